"""The HAPI sandbox offers every FHIR feature the service relies on."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from harness.receiver import start_receiver

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _tag() -> str:
    return uuid.uuid4().hex[:12]


def test_metadata_reports_fhir_401_and_hapi(fhir: httpx.Client) -> None:
    meta = fhir.get("metadata").json()
    assert meta["resourceType"] == "CapabilityStatement"
    assert meta["fhirVersion"] == "4.0.1"
    assert "HAPI FHIR" in meta["software"]["name"]


def test_create_read_update_with_etag(fhir: httpx.Client) -> None:
    created = fhir.post("Patient", json={"resourceType": "Patient", "name": [{"family": _tag()}]})
    assert created.status_code == 201
    assert created.headers["etag"] == 'W/"1"'
    pid = created.json()["id"]

    read = fhir.get(f"Patient/{pid}")
    assert read.status_code == 200
    assert read.json()["meta"]["versionId"] == "1"

    body = read.json() | {"gender": "female"}
    updated = fhir.put(f"Patient/{pid}", json=body, headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200
    assert updated.headers["etag"] == 'W/"2"'

    stale = fhir.put(f"Patient/{pid}", json=body, headers={"If-Match": 'W/"1"'})
    assert stale.status_code in (409, 412)
    assert stale.json()["resourceType"] == "OperationOutcome"

    history = fhir.get(f"Patient/{pid}/_history").json()
    assert history["type"] == "history"
    assert {e["resource"]["meta"]["versionId"] for e in history["entry"]} == {"1", "2"}


def test_search_pages_through_next_links(fhir: httpx.Client) -> None:
    family = _tag()
    for _ in range(5):
        fhir.post("Patient", json={"resourceType": "Patient", "name": [{"family": family}]})
    page: dict[str, Any] = fhir.get("Patient", params={"family": family, "_count": "2"}).json()
    assert len(page["entry"]) == 2
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not nxt:
            break
        page = fhir.get(nxt[0]).json()
    assert pages == 3
    assert len(set(seen)) == 5


def test_transaction_resolves_urn_uuid_references(fhir: httpx.Client) -> None:
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_urn,
                "resource": {"resourceType": "Patient", "name": [{"family": _tag()}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": patient_urn},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = fhir.post("", json=bundle)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    patient_loc, obs_loc = (e["response"]["location"] for e in result["entry"])
    obs = fhir.get(obs_loc.split("/_history")[0]).json()
    assert obs["subject"]["reference"] == patient_loc.split("/_history")[0]


def test_conditional_create_twice_leaves_one(fhir: httpx.Client) -> None:
    value = _tag()
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:infusion-bridge:test", "value": value}],
    }
    condition = {"If-None-Exist": f"identifier=urn:infusion-bridge:test|{value}"}
    first = fhir.post("Patient", json=body, headers=condition)
    second = fhir.post("Patient", json=body, headers=condition)
    assert first.status_code == 201
    assert second.status_code == 200
    found = fhir.get("Patient", params={"identifier": f"urn:infusion-bridge:test|{value}"}).json()
    assert found["total"] == 1


def test_rest_hook_subscription_delivers_new_medication_request(fhir: httpx.Client) -> None:
    receiver = start_receiver()
    try:
        patient = fhir.post("Patient", json={"resourceType": "Patient"}).json()["id"]
        sub = fhir.post(
            "Subscription",
            json={
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "integration test",
                "criteria": f"MedicationRequest?subject=Patient/{patient}",
                "channel": {
                    "type": "rest-hook",
                    "endpoint": receiver.url,
                    "payload": "application/fhir+json",
                    "header": ["X-Hook-Secret: s3cret"],
                },
            },
        ).json()
        _wait_active(fhir, sub["id"])
        order = fhir.post(
            "MedicationRequest",
            json={
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [{"system": RXNORM, "code": "1876366", "display": "ocrelizumab"}]
                },
                "subject": {"reference": f"Patient/{patient}"},
            },
        ).json()
        delivery = receiver.wait_for(lambda d: d.path.endswith(f"/MedicationRequest/{order['id']}"))
        assert delivery.method == "PUT"
        assert delivery.headers["x-hook-secret"] == "s3cret"
        assert delivery.body["resourceType"] == "MedicationRequest"
        assert delivery.body["id"] == order["id"]
    finally:
        receiver.close()


def _wait_active(fhir: httpx.Client, sub_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fhir.get(f"Subscription/{sub_id}").json()["status"] == "active":
            return
        time.sleep(0.5)
    pytest.fail(f"Subscription/{sub_id} did not become active within {timeout}s")


HEART_RATE = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "2026-11-26T09:30:00+00:00",
    "valueQuantity": {
        "value": 72,
        "unit": "beats/minute",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    },
}


def _errors(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in outcome.get("issue", []) if i["severity"] in ("error", "fatal")]


def test_validate_accepts_a_valid_vital_sign(fhir: httpx.Client) -> None:
    outcome = fhir.post("Observation/$validate", json=HEART_RATE).json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert _errors(outcome) == []


def test_validate_reports_missing_required_elements(fhir: httpx.Client) -> None:
    broken = {k: v for k, v in HEART_RATE.items() if k not in ("status", "code")}
    response = fhir.post("Observation/$validate", json=broken)
    errors = _errors(response.json())
    assert errors, response.text
    text = " ".join(i.get("diagnostics", "") for i in errors)
    assert "status" in text or "code" in text
