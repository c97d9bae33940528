"""Drive the HAPI FHIR sandbox (sandbox/hapi/sandbox.sh) from the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "sandbox" / "hapi" / "sandbox.sh"


@dataclass
class Sandbox:
    """One HAPI server on ``port``; ``started_here`` says whether the tests must stop it."""

    port: int
    started_here: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def data_dir(self) -> Path:
        """H2 on disk, so a stopped and restarted sandbox still has its data (like an EHR)."""
        return ROOT / "sandbox" / "hapi" / "target" / f"test-data-{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HAPI_PORT": str(self.port),
            "HAPI_JDBC_URL": f"jdbc:h2:file:{self.data_dir}/hapi",
        }

    def wipe(self) -> None:
        """Forget all data (only while stopped)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def is_up(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/metadata", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        # No capture: the script's progress lines show in the test log (`pytest -s`) and
        # its failure output (the tail of the HAPI log) lands in the pytest report.
        result = subprocess.run(
            ["bash", str(SCRIPT), "start"],
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"HAPI sandbox failed to start on port {self.port}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=self._env(), check=True)
