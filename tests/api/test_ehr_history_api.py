"""``POST /patients/{id}/ehr-history`` in-process, against a faked EHR: what it keeps, what
the history then shows, who may ask, and the audit record it leaves."""

from __future__ import annotations

import json
from typing import Any

import respx
from fastapi.testclient import TestClient
from sqlalchemy import text

from harness.identity import signed_in_client
from services.infusion_bridge.settings import Settings
from tests.conftest import FAKE_EHR

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OCRELIZUMAB = "1876366"


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


ADMINISTRATION = {
    "resourceType": "MedicationAdministration",
    "id": "ehr-ma-1",
    "meta": {"versionId": "2"},
    "status": "completed",
    "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": OCRELIZUMAB}]},
    "subject": {"reference": "Patient/p-pull"},
    "effectivePeriod": {"start": "2026-03-02T09:00:00+00:00", "end": "2026-03-02T12:30:00+00:00"},
    "dosage": {"dose": {"value": 600, "unit": "mg", "code": "mg"}},
}
WEIGHT = {
    "resourceType": "Observation",
    "id": "ehr-weight-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "Patient/p-pull"},
    "effectiveDateTime": "2026-03-01T08:00:00+00:00",
    "valueQuantity": {"value": 72, "unit": "kg", "code": "kg"},
}
PATIENT = {
    "resourceType": "Patient",
    "id": "p-pull",
    "name": [{"use": "official", "family": "Chair", "given": ["Ada"]}],
    "birthDate": "1980-04-02",
}


def audit_rows(client: TestClient) -> list[dict[str, Any]]:
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_events ORDER BY id")).mappings()
        return [dict(r) for r in rows]


def test_pull_keeps_the_ehr_history_and_is_audited(client: TestClient) -> None:
    with respx.mock(base_url=FAKE_EHR) as ehr:
        admins = ehr.get("/MedicationAdministration").respond(200, json=searchset(ADMINISTRATION))
        ehr.get("/Observation").respond(200, json=searchset(WEIGHT))
        ehr.get("/Patient/p-pull").respond(200, json=PATIENT)
        r = client.post("/patients/p-pull/ehr-history")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "patient": "Patient/p-pull",
        "administrations": 1,
        "measurements": 1,
        "patient_found": True,
        "skipped": 0,
    }
    assert admins.calls.last.request.url.params["patient"] == "Patient/p-pull"
    record = audit_rows(client)[-1]
    assert (record["route"], record["action"], record["outcome"]) == (
        "/patients/{patient_id}/ehr-history",
        "E",
        "0",
    )
    assert record["patient"] == "Patient/p-pull"
    assert json.loads(record["entities"]) == [
        {"type": "Patient", "id": "p-pull", "patient": "Patient/p-pull"}
    ]

    history = client.get("/patients/p-pull/infusions").json()
    assert history["patient_name"] == "Ada Chair"
    ocrelizumab = next(d for d in history["drugs"] if d["drug"] == "ocrelizumab")
    assert ocrelizumab["ehr_doses"] == 1


def test_an_ehr_that_cannot_answer_is_503_and_still_audited(client: TestClient) -> None:
    with respx.mock(base_url=FAKE_EHR) as ehr:
        ehr.get("/MedicationAdministration").respond(400, json={"resourceType": "OperationOutcome"})
        r = client.post("/patients/p-down/ehr-history")
    assert r.status_code == 503
    assert r.json()["resourceType"] == "OperationOutcome"
    record = audit_rows(client)[-1]
    assert (record["outcome"], record["status"], record["patient"]) == (
        "8",
        503,
        "Patient/p-down",
    )


def test_a_patient_launch_pulls_only_its_own_patient(settings: Settings) -> None:
    token = {"roles": ("nurse",), "scope": "launch/patient patient/*.rs", "patient": "p-mine"}
    with signed_in_client(settings, **token) as me, respx.mock(base_url=FAKE_EHR) as ehr:
        other = me.post("/patients/p-other/ehr-history")
        assert other.status_code == 404
        assert not ehr.calls, "the EHR is not asked about a patient out of reach"
        ehr.get("/MedicationAdministration").respond(200, json=searchset())
        ehr.get("/Observation").respond(200, json=searchset())
        ehr.get("/Patient/p-mine").respond(404, json={"resourceType": "OperationOutcome"})
        assert me.post("/patients/p-mine/ehr-history").status_code == 200


def test_system_clients_and_staff_without_the_role_are_refused(settings: Settings) -> None:
    backend = {"roles": (), "scope": "system/Session.rs system/*.cruds"}
    with signed_in_client(settings, **backend) as ehr_app:
        assert ehr_app.post("/patients/p-1/ehr-history").status_code == 403
    admin = {"roles": ("admin",), "scope": "user/Session.rs"}
    with signed_in_client(settings, **admin) as admin_app:
        assert admin_app.post("/patients/p-1/ehr-history").status_code == 403
