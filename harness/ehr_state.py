"""Arrange EHR-side state in the live sandbox: patients and orders the service can act on."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from harness.fhir_payloads import medication_request

SYSTEM = "urn:infusion-bridge:resource"  # the service's default identifier system


def ehr_patient(fhir: httpx.Client) -> str:
    created = fhir.post("Patient", json={"resourceType": "Patient", "name": [{"family": "Chair"}]})
    created.raise_for_status()
    return f"Patient/{created.json()['id']}"


def ehr_order(fhir: httpx.Client, service: httpx.Client, patient: str) -> str:
    """An ocrelizumab order that exists in the EHR and is pushed to the service (same id)."""
    order_id = f"ocr-{uuid.uuid4().hex[:12]}"
    body = medication_request(id=order_id, subject={"reference": patient}, requester=None)
    fhir.put(f"MedicationRequest/{order_id}", json=body).raise_for_status()
    pushed = service.put(
        f"/fhir/MedicationRequest/{order_id}",
        json=fhir.get(f"MedicationRequest/{order_id}").json(),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert pushed.status_code == 201, pushed.text
    return order_id


def count(fhir: httpx.Client, resource_type: str, **params: str) -> int:
    found = fhir.get(resource_type, params={**params, "_summary": "count"})
    found.raise_for_status()
    total: int = found.json()["total"]
    return total


def wait_delivered(service: httpx.Client, session_ids: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    states: dict[str, Any] = {}
    while time.monotonic() < deadline:
        states = {
            sid: [d["status"] for d in service.get(f"/sessions/{sid}").json()["deliveries"]]
            for sid in session_ids
        }
        if all(s == ["delivered"] for s in states.values()):
            return
        time.sleep(0.3)
    raise AssertionError(f"not all delivered within {timeout}s: {states}")
