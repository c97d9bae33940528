"""The service's EHR client and readiness probe against the live sandbox."""

from __future__ import annotations

import asyncio

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


@pytest.mark.disruptive
def test_ready_turns_503_when_the_sandbox_stops(sandbox: HapiSandbox, tmp_path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        ehr_base_url=sandbox.base_url,
        ehr_timeout_seconds=5,
        log_format="console",
    )
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/health/ready").status_code == 200
            sandbox.stop()
            r = client.get("/health/ready")
            assert r.status_code == 503
            assert r.json()["checks"]["ehr"]["status"] == "down"
            assert r.json()["checks"]["database"]["status"] == "ok"

            async def unreachable() -> None:
                async with EhrClient(sandbox.base_url) as ehr:
                    await ehr.metadata()

            with pytest.raises(EhrUnavailable):
                asyncio.run(unreachable())
    finally:
        if not sandbox.is_up():
            sandbox.start()
