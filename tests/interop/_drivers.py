"""Run an out-of-process client driver (Java, Node) and collect its per-step report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(part: str) -> None:
    """Build (or check up to date) one driver with ``build.sh``; fail loudly if it cannot."""
    done = subprocess.run(
        ["bash", str(HERE / "build.sh"), part], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"building {part} failed:\n{done.stderr[-4000:]}"


def run_driver(command: list[str], timeout: float = 300) -> dict[str, dict[str, object]]:
    """Run a driver that prints one JSON object per line ({"step", "ok", "detail"})."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    steps: dict[str, dict[str, object]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            report = json.loads(line)
            steps[str(report["step"])] = report
    assert steps, f"the driver reported nothing (exit {done.returncode}):\n{done.stderr[-4000:]}"
    return steps


def header_args(headers: dict[str, str]) -> list[str]:
    return [f"{name}: {value}" for name, value in headers.items()]
