"""The write-back Bundles against the live HAPI R4 sandbox: ``$validate`` and a real transaction.

Every resource of the three golden Bundles (``tests/golden/session_*.json``) must come back from
``{Type}/$validate`` without an ``error`` or ``fatal`` issue (warnings are expected: HAPI has no
LOINC/RxNorm terminology loaded, and the resources carry no narrative). The transaction test
posts a Bundle twice and checks the second post creates nothing (conditional creates).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_mappings.writeback_bundle import writeback_bundle
from services.infusion_bridge.domain.catalog import load_catalog
from tests.unit.test_writeback_bundle import PREMED_ORDERS, completed_session, order

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
GOLDENS = ("session_completed", "session_stopped", "session_not_done")


def _problems(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal")]


def _show(issues: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {i.get('severity')}: {i.get('diagnostics')} @ {i.get('expression') or i.get('location')}"  # noqa: E501
        for i in issues
    )


def _golden(name: str) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    return bundle


@pytest.mark.parametrize("name", GOLDENS)
def test_every_resource_validates(fhir: httpx.Client, name: str) -> None:
    failures: list[str] = []
    for entry in _golden(name)["entry"]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        response = fhir.post(f"{kind}/$validate", json=resource)
        outcome = response.json()
        problems = _problems(outcome)
        if response.status_code >= 400 or problems:
            failures.append(
                f"{kind} {entry['fullUrl']} (HTTP {response.status_code}):\n"
                + (_show(problems) or json.dumps(outcome)[:2000])
            )
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", GOLDENS)
def test_whole_bundle_validates(fhir: httpx.Client, name: str) -> None:
    response = fhir.post("Bundle/$validate", json=_golden(name))
    problems = _problems(response.json())
    assert response.status_code < 400, response.text[:2000]
    assert not problems, _show(problems)


def test_transaction_is_idempotent(fhir: httpx.Client) -> None:
    """Post the completed session twice: everything is created once, then only matched."""
    run = uuid.uuid4().hex[:12]
    patient_id, order_id = f"pat-{run}", f"ocr-{run}"
    premeds = {key: f"{value}-{run}" for key, value in PREMED_ORDERS.items()}
    # referential integrity: the external targets must exist on the server
    _put(fhir, "Patient", patient_id, {"active": True})
    for request_id in (order_id, *premeds.values()):
        _put(
            fhir,
            "MedicationRequest",
            request_id,
            {
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "test"},
                "subject": {"reference": f"Patient/{patient_id}"},
            },
        )
    o = order().model_copy(update={"id": order_id, "patient": f"Patient/{patient_id}"})
    session = completed_session().model_copy(
        update={"id": f"sess-{run}", "order_id": order_id, "patient": o.patient}
    )
    system = f"urn:infusion-bridge:test:{run}"
    bundle = writeback_bundle(
        session, o, load_catalog(), identifier_system=system, premed_orders=premeds
    )

    first = fhir.post("", json=bundle)
    assert first.status_code == 200, first.text[:3000]
    statuses = [e["response"]["status"] for e in first.json()["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses

    second = fhir.post("", json=bundle)
    assert second.status_code == 200, second.text[:3000]
    again = second.json()["entry"]
    assert all(e["response"]["status"].startswith("200") for e in again), again
    locations = [_unversioned(e["response"]["location"]) for e in first.json()["entry"]]
    assert [_unversioned(e["response"]["location"]) for e in again] == locations

    # references were rewritten to the server ids
    found = fhir.get(
        "Observation", params={"identifier": f"{system}|sess-{run}/vitals/ev02/8867-4"}
    )
    (obs,) = [e["resource"] for e in found.json()["entry"]]
    assert obs["partOf"][0]["reference"] == locations[1]
    assert obs["encounter"]["reference"] == locations[0]
    tagged = fhir.get("AdverseEvent", params={"_tag": f"{system}|sess-{run}/reaction/ev10"})
    assert tagged.json()["total"] == 1


def _put(fhir: httpx.Client, kind: str, resource_id: str, body: dict[str, Any]) -> None:
    response = fhir.put(
        f"{kind}/{resource_id}", json={"resourceType": kind, "id": resource_id, **body}
    )
    assert response.status_code in (200, 201), response.text[:2000]


def _unversioned(location: str) -> str:
    return location.split("/_history/")[0]
