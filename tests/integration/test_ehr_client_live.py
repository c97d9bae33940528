"""The service's EHR client and readiness probe against the live sandbox."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sandbox.hapi_server import HapiSandbox
from services.infusion_bridge.app import create_app
from services.infusion_bridge.ehr.client import EhrClient
from services.infusion_bridge.ehr.errors import EhrClientError, EhrUnavailable
from services.infusion_bridge.settings import Settings


def test_client_reads_metadata_and_reports_404_with_outcome(sandbox: HapiSandbox) -> None:
    async def scenario() -> None:
        async with EhrClient(sandbox.base_url) as ehr:
            meta = await ehr.metadata()
            assert meta["fhirVersion"] == "4.0.1"
            with pytest.raises(EhrClientError) as info:
                await ehr.read("Patient", "does-not-exist-0")
            assert info.value.status_code == 404
            assert info.value.outcome is not None
            assert "does-not-exist-0" in info.value.diagnostics

    asyncio.run(scenario())


def _ready_status(client: TestClient, expected: int, within: float) -> dict[str, Any]:
    """Poll readiness until it says ``expected`` (the probe runs in the background)."""
    deadline = time.monotonic() + within
    while True:
        r = client.get("/health/ready")
        if r.status_code == expected or time.monotonic() > deadline:
            assert r.status_code == expected, r.text
            body: dict[str, Any] = r.json()
            return body
        time.sleep(0.2)


@pytest.mark.disruptive
def test_ready_turns_503_when_the_sandbox_stops(sandbox: HapiSandbox, tmp_path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        ehr_base_url=sandbox.base_url,
        ehr_timeout_seconds=5,
        ehr_probe_interval_seconds=0.5,
        log_format="console",
    )
    try:
        with TestClient(create_app(settings)) as client:
            up = _ready_status(client, 200, within=10)
            assert up["checks"]["ehr"]["fhirVersion"] == "4.0.1"
            sandbox.stop()
            down = _ready_status(client, 503, within=5)
            assert down["checks"]["ehr"]["status"] == "down"
            assert down["checks"]["database"]["status"] == "ok"

            async def unreachable() -> None:
                async with EhrClient(sandbox.base_url) as ehr:
                    await ehr.metadata()

            with pytest.raises(EhrUnavailable):
                asyncio.run(unreachable())
    finally:
        if not sandbox.is_up():
            sandbox.start()
