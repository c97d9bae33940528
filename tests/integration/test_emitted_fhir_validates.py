"""Everything the service's FHIR base emits passes HAPI's $validate with no errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from harness.fhir_payloads import dose, medication_request, premedication
from harness.staff_auth import StaffAuth, trusting
from harness.timelines import completed_timeline, run_session
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.app import create_app
from services.infusion_bridge.settings import Settings

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def emitted(
    tmp_path_factory: pytest.TempPathFactory, keycloak: KeycloakSandbox, staff: StaffAuth
) -> Iterator[dict[str, Any]]:
    """One of each kind of FHIR answer the service gives, from a real app."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path_factory.mktemp('emit') / 'store.db'}",
        ehr_base_url="http://127.0.0.1:9/fhir",
        sync_interval_seconds=0,
        delivery_enabled=False,
        log_format="console",
        **trusting(keycloak),
    )
    with TestClient(create_app(settings)) as c:
        c.auth = staff
        out: dict[str, Any] = {"metadata": c.get("/fhir/metadata").json()}
        urn = f"urn:uuid:{uuid.uuid4()}"
        out["transaction-response"] = c.post(
            "/fhir",
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "fullUrl": urn,
                        "resource": medication_request(id="v-1"),
                        "request": {"method": "PUT", "url": "MedicationRequest/v-1"},
                    },
                    {
                        "resource": premedication("MedicationRequest/v-1"),
                        "request": {"method": "POST", "url": "MedicationRequest"},
                    },
                ],
            },
            headers=FHIR,
        ).json()
        bad = medication_request()
        dose(bad)["value"] = 0
        out["batch-response"] = c.post(
            "/fhir",
            json={
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"resource": bad, "request": {"method": "POST", "url": "MedicationRequest"}},
                    {"request": {"method": "GET", "url": "MedicationRequest/v-1"}},
                ],
            },
            headers=FHIR,
        ).json()
        refused = c.post("/fhir/MedicationRequest", json=bad, headers=FHIR)
        assert refused.status_code == 422
        out["OperationOutcome"] = refused.json()
        out["MedicationRequest"] = c.get("/fhir/MedicationRequest/v-1").json()
        session = run_session(c, "v-1", completed_timeline(datetime(2026, 9, 1, 8, tzinfo=UTC)))
        out["session"] = c.get(f"/sessions/{session['id']}/fhir").json()
        out["searchset"] = c.get(
            "/fhir/Observation", params={"patient": "pat-1", "_count": "5"}
        ).json()
        updated = out["MedicationRequest"] | {"status": "on-hold"}
        assert c.put("/fhir/MedicationRequest/v-1", json=updated, headers=FHIR).status_code == 200
        out["vread"] = c.get("/fhir/MedicationRequest/v-1/_history/1").json()
        c.delete("/fhir/MedicationRequest/v-1")
        out["history"] = c.get("/fhir/MedicationRequest/v-1/_history").json()
        out["order-searchset"] = c.get(
            "/fhir/MedicationRequest", params={"patient": "pat-1", "_count": "1"}
        ).json()
        out["summary-count"] = c.get("/fhir/MedicationRequest", params={"_summary": "count"}).json()
        out["elements"] = c.get(
            "/fhir/Observation", params={"_elements": "subject", "_count": "2"}
        ).json()
        out["not-acceptable"] = c.get("/fhir/metadata", params={"_format": "xml"}).json()
        yield out


@pytest.mark.parametrize(
    "kind",
    [
        "metadata",
        "transaction-response",
        "batch-response",
        "OperationOutcome",
        "MedicationRequest",
        "session",
        "searchset",
        "vread",
        "history",
        "order-searchset",
        "summary-count",
        "elements",
        "not-acceptable",
    ],
)
def test_emitted_resource_validates(fhir: httpx.Client, emitted: dict[str, Any], kind: str) -> None:
    resource = emitted[kind]
    outcome = fhir.post(f"{resource['resourceType']}/$validate", json=resource).json()
    errors = [i for i in outcome.get("issue", []) if i["severity"] in ("error", "fatal")]
    assert errors == [], errors
