"""Drive the HAPI FHIR sandbox (``sandbox/hapi/sandbox.sh``) from tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "sandbox" / "hapi" / "sandbox.sh"


@dataclass
class HapiSandbox:
    """One HAPI server on ``port``; ``started_here`` says whether we must stop it.

    ``on_disk`` keeps H2 in files, so a stopped and restarted sandbox still has its data
    (like an EHR going down and coming back); otherwise H2 lives in memory.
    """

    port: int
    on_disk: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    started_here: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def data_dir(self) -> Path:
        return ROOT / "sandbox" / "hapi" / "target" / f"test-data-{self.port}"

    @property
    def pid(self) -> int | None:
        pid_file = ROOT / "sandbox" / "hapi" / "target" / f"hapi-{self.port}.pid"
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "HAPI_PORT": str(self.port), **self.extra_env}
        if self.on_disk:
            env["HAPI_JDBC_URL"] = f"jdbc:h2:file:{self.data_dir}/hapi"
        return env

    def wipe(self) -> None:
        """Forget all data (only while stopped)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def is_up(self) -> bool:
        try:
            r = httpx.get(f"{self.base_url}/metadata", timeout=5)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and "CapabilityStatement" in r.text

    def start(self) -> None:
        """Build if needed and start; the script's output goes into the error on failure."""
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
