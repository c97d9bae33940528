"""The app skeleton: health probes, error bodies, body size limit."""

from __future__ import annotations

import httpx
import respx
from fastapi.testclient import TestClient

from harness.identity import signed_in_app
from services.infusion_bridge.settings import Settings
from tests.conftest import FAKE_EHR


def test_live_is_ok(client: TestClient) -> None:
    r = client.get("/health/live")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["x-request-id"]


def test_ready_when_database_and_ehr_answer(client: TestClient) -> None:
    with respx.mock(base_url=FAKE_EHR) as ehr:
        ehr.get("/metadata").respond(
            200, json={"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}
        )
        r = client.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["ehr"] == {"status": "ok", "fhirVersion": "4.0.1"}


def test_ready_503_with_reason_when_ehr_is_down(client: TestClient) -> None:
    with respx.mock(base_url=FAKE_EHR) as ehr:
        ehr.get("/metadata").mock(side_effect=httpx.ConnectError("refused"))
        r = client.get("/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["ehr"]["status"] == "down"
    assert "unreachable" in body["checks"]["ehr"]["reason"]


def test_unknown_route_is_operation_outcome(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/fhir+json"
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["code"] == "not-found"


def test_oversized_body_is_refused_with_413(settings: Settings) -> None:
    settings.max_body_bytes = 1024
    with TestClient(signed_in_app(settings)) as c:
        r = c.post("/health/live", content=b"x" * 2048)
    assert r.status_code == 413
    assert r.json()["issue"][0]["code"] == "too-costly"


def test_settings_read_database_url_from_plain_env(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@localhost/db")
    monkeypatch.setenv("INFUSION_EHR_BASE_URL", "http://ehr.example/fhir")
    s = Settings()
    assert s.database_url == "postgresql+psycopg://u@localhost/db"
    assert s.ehr_base_url == "http://ehr.example/fhir"
    assert s.port == 8000
    assert s.host == "127.0.0.1"
