"""The service as separate OS processes (``infusion-bridge serve``), as replicas run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from harness.live_service import free_port

ROOT = Path(__file__).resolve().parent.parent


def service_env(
    database_url: str, port: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of one replica: loopback only, no sync, no write-back worker."""
    return {
        **os.environ,
        "INFUSION_HOST": "127.0.0.1",
        "INFUSION_PORT": str(port),
        "INFUSION_DATABASE_URL": database_url,
        "INFUSION_EHR_BASE_URL": "http://127.0.0.1:9/fhir",  # discard port: never called here
        "INFUSION_SYNC_INTERVAL_SECONDS": "0",
        "INFUSION_DELIVERY_ENABLED": "false",
        "INFUSION_LOG_LEVEL": "WARNING",
        **(extra or {}),
    }


@contextmanager
def service_process(
    database_url: str,
    log_path: Path,
    *,
    args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[tuple[str, int]]:
    """Start ``infusion-bridge serve`` on a free port; yields (base URL, pid); stops it."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.infusion_bridge.cli", "serve", *args],
            cwd=ROOT,
            env=service_env(database_url, port, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_live(process, url, log_path, timeout)
        yield url, process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def replicas(
    database_url: str,
    folder: Path,
    count: int = 2,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[list[str]]:
    """``count`` separate service processes on one database; yields their base URLs.

    They start one after the other, so that only the first applies the migrations.
    """
    with ExitStack() as stack:
        urls = [
            stack.enter_context(
                service_process(database_url, folder / f"replica-{i}.log", extra_env=extra_env)
            )[0]
            for i in range(count)
        ]
        yield urls


def wait_live(process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=1) as probe:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the service exited with {process.returncode}:\n{tail}")
            try:
                if probe.get("/health/live").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"the service did not answer /health/live within {timeout} s")
