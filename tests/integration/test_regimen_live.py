"""Regimen-aware records against the live HAPI sandbox: the patient's history pulled from the
EHR decides the next dose; safety gates at infusion start; the TOUCH checklist lands in the EHR
as a valid QuestionnaireResponse; premedication links never cross patients; billing units."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.ehr_state import SYSTEM, count, wait_delivered
from harness.fhir_payloads import RXNORM, UCUM, medication_request, premedication
from harness.live_service import running_service
from harness.staff_auth import StaffAuth, trusting
from harness.timelines import run_session, ts
from sandbox.hapi_server import HapiSandbox
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}
LOINC = "http://loinc.org"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def svc(
    sandbox: HapiSandbox, keycloak: KeycloakSandbox, staff: StaffAuth, tmp_path: Path
) -> Iterator[httpx.Client]:
    """The service on a socket; each request carries the real Keycloak token of whoever makes
    it (the EHR pushes orders, a nurse charts, a clinician reads and pulls the history)."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        ehr_base_url=sandbox.base_url,
        sync_interval_seconds=0,
        delivery_poll_seconds=0.5,
        log_format="console",
        **trusting(keycloak),
    )
    with (
        running_service(settings) as url,
        httpx.Client(base_url=url, timeout=60, auth=staff) as client,
    ):
        yield client


def patient(fhir: httpx.Client, name: str = "Chair") -> str:
    body = {
        "resourceType": "Patient",
        "name": [{"use": "official", "family": name, "given": ["Ada"]}],
        "birthDate": "1980-04-02",
    }
    created = fhir.post("Patient", json=body)
    created.raise_for_status()
    return f"Patient/{created.json()['id']}"


def ehr_administration(
    fhir: httpx.Client,
    subject: str,
    *,
    rxnorm: str,
    days_ago: float,
    dose: float,
    unit: str = "mg",
) -> str:
    """An administration charted in the EHR by someone else (no identifier of ours)."""
    start = NOW - timedelta(days=days_ago)
    body = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxnorm}]},
        "subject": {"reference": subject},
        "effectivePeriod": {
            "start": start.isoformat(),
            "end": (start + timedelta(hours=3)).isoformat(),
        },
        "dosage": {"dose": {"value": dose, "unit": unit, "system": UCUM, "code": unit}},
    }
    created = fhir.post("MedicationAdministration", json=body)
    created.raise_for_status()
    return str(created.json()["id"])


def ehr_observation(
    fhir: httpx.Client, subject: str, loinc: str, value: float, unit: str, days_ago: float
) -> None:
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": subject},
        "effectiveDateTime": (NOW - timedelta(days=days_ago)).isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    fhir.post("Observation", json=body).raise_for_status()


def push_order(svc: httpx.Client, body: dict[str, Any], fhir: httpx.Client | None = None) -> str:
    """The order pushed to the service (and first created in the EHR when ``fhir`` is given:
    the write-back's MedicationAdministration.request must resolve there)."""
    order_id = f"o-{uuid.uuid4().hex[:12]}"
    body = {**body, "id": order_id}
    if fhir is not None:
        fhir.put(f"MedicationRequest/{order_id}", json=body).raise_for_status()
    r = svc.put(f"/fhir/MedicationRequest/{order_id}", json=body, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return order_id


def order_for(
    subject: str, *, rxnorm: str, dose: float, unit: str = "mg", **extra: Any
) -> dict[str, Any]:
    body = medication_request(
        subject={"reference": subject, "display": "Ada Chair"},
        medicationCodeableConcept={"coding": [{"system": RXNORM, "code": rxnorm}]},
        requester=None,  # no Practitioner in the sandbox
        **extra,
    )
    dosage = body["dosageInstruction"][0]
    dosage["doseAndRate"][0]["doseQuantity"] = {
        "value": dose,
        "unit": unit,
        "system": UCUM,
        "code": unit,
    }
    dosage.pop("timing", None)  # the regimen decides, not the order
    dosage["text"] = f"{dose:g} {unit} IV"
    return body


def drug_history(svc: httpx.Client, subject: str, drug: str, *, ehr_doses: int) -> dict[str, Any]:
    """The drug's history once the background pull (started by the order) has landed."""
    deadline = time.monotonic() + 30
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        history = svc.get(f"/patients/{subject.split('/')[1]}/infusions").json()
        found = next((d for d in history["drugs"] if d["drug"] == drug), {})
        if found.get("ehr_doses") == ehr_doses:
            return {**found, "_history": history}
        time.sleep(0.3)
    raise AssertionError(f"the EHR history did not arrive: {found}")


def test_maintenance_patient_with_two_ehr_doses_is_due_24_weeks_later(
    fhir: httpx.Client, svc: httpx.Client
) -> None:
    subject = patient(fhir)
    first = ehr_administration(fhir, subject, rxnorm="1876366", days_ago=175, dose=600)
    second = ehr_administration(fhir, subject, rxnorm="1876366", days_ago=7, dose=600)
    ehr_observation(fhir, subject, "29463-7", 70, "kg", days_ago=7)
    push_order(svc, order_for(subject, rxnorm="1876366", dose=600))

    ocr = drug_history(svc, subject, "ocrelizumab", ehr_doses=2)
    last = (NOW - timedelta(days=7)).date()
    assert ocr["next_due"] == (last + timedelta(weeks=24)).isoformat()
    assert "every 24 weeks after the last maintenance dose" in ocr["rule"]
    assert f"EHR MedicationAdministration/{second}/_history/1" in ocr["rule"]
    assert "2 doses: 2 from the EHR, 0 charted here" in ocr["rule"]
    assert {d["ehr_reference"].split("/")[1] for d in ocr["doses"]} == {first, second}
    history = ocr["_history"]
    assert (history["patient_name"], history["patient_birth_date"]) == ("Ada Chair", "1980-04-02")
    assert [(m["kind"], m["value"]) for m in history["measurements"]] == [("weight", 70)]


def test_a_clinician_pulls_the_history_on_demand(fhir: httpx.Client, svc: httpx.Client) -> None:
    subject = patient(fhir, "Pulled")
    ehr_administration(fhir, subject, rxnorm="1876366", days_ago=20, dose=600)
    ehr_observation(fhir, subject, "8302-2", 172, "cm", days_ago=20)
    pid = subject.split("/")[1]
    before = svc.get(f"/patients/{pid}/infusions").json()
    assert before["drugs"] == []  # no order, so no background pull: nothing known yet
    pulled = svc.post(f"/patients/{pid}/ehr-history")
    assert pulled.status_code == 200, pulled.text
    assert pulled.json() == {
        "patient": subject,
        "administrations": 1,
        "measurements": 1,
        "patient_found": True,
        "skipped": 0,
    }
    after = svc.get(f"/patients/{pid}/infusions").json()
    assert after["patient_name"] == "Ada Pulled"
    assert [d["ehr_doses"] for d in after["drugs"] if d["drug"] == "ocrelizumab"] == [1]


def test_new_patient_in_loading_is_due_two_weeks_later(
    fhir: httpx.Client, svc: httpx.Client
) -> None:
    subject = patient(fhir)
    ehr_administration(fhir, subject, rxnorm="1876366", days_ago=3, dose=300)
    push_order(svc, order_for(subject, rxnorm="1876366", dose=300))
    ocr = drug_history(svc, subject, "ocrelizumab", ehr_doses=1)
    assert ocr["next_due"] == ((NOW - timedelta(days=3)).date() + timedelta(weeks=2)).isoformat()
    assert ocr["rule"].startswith("loading dose 2 of 2")


def test_alemtuzumab_course_day_3_of_5(fhir: httpx.Client, svc: httpx.Client) -> None:
    subject = patient(fhir)
    ehr_administration(fhir, subject, rxnorm="117055", days_ago=2, dose=12)
    ehr_administration(fhir, subject, rxnorm="1594663", days_ago=1, dose=12)
    push_order(svc, order_for(subject, rxnorm="117055", dose=12))
    lem = drug_history(svc, subject, "alemtuzumab", ehr_doses=2)
    assert "course 1: day 3 of 5" in lem["rule"]
    assert lem["next_due"] == NOW.date().isoformat()


def test_mitoxantrone_ehr_doses_past_the_lifetime_limit_stop_further_doses(
    fhir: httpx.Client, svc: httpx.Client
) -> None:
    subject = patient(fhir)
    ehr_observation(fhir, subject, "8277-6", 1.8, "m2", days_ago=1200)
    for i in range(12):  # 12 x 21.6 mg at 1.8 m2 = 144 mg/m2
        ehr_administration(fhir, subject, rxnorm="7005", days_ago=1100 - 91 * i, dose=21.6)
    push_order(svc, order_for(subject, rxnorm="7005", dose=12, unit="mg/m2"))
    mit = drug_history(svc, subject, "mitoxantrone", ehr_doses=12)
    assert mit["cumulative_mg_per_m2"] == 144
    assert mit["next_due"] is None
    assert "lifetime maximum of 140 mg/m2" in mit["rule"]


def natalizumab_order(subject: str) -> dict[str, Any]:
    body = order_for(subject, rxnorm="354770", dose=300)
    body["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"] = {
        "value": 115,
        "unit": "mL/h",
        "system": UCUM,
        "code": "mL/h",
    }
    return body


def test_natalizumab_needs_the_touch_checklist_which_lands_in_the_ehr(
    fhir: httpx.Client, svc: httpx.Client
) -> None:
    subject = patient(fhir)
    order_id = push_order(svc, natalizumab_order(subject), fhir)
    start = NOW - timedelta(hours=4)
    before = [
        {"type": "check-in", "at": ts(start, 0), "by": "RN Test"},
        {"type": "iv-insertion", "at": ts(start, 5), "site": "left forearm", "gauge": 22},
    ]
    sid = run_session(svc, order_id, before)["id"]
    refused = svc.post(
        f"/sessions/{sid}/events",
        json={"type": "infusion-start", "at": ts(start, 20), "rate_ml_per_h": 115},
    )
    assert refused.status_code == 409
    issue = refused.json()["issue"][0]
    assert "safety gate 'touch-checklist'" in issue["diagnostics"]
    assert svc.get(f"/sessions/{sid}").json()["state"] == "iv-placed"  # nothing written

    rest = [
        {
            "type": "touch-checklist",
            "at": ts(start, 15),
            "by": "RN Test",
            "authorized": True,
            "authorization_date": (NOW - timedelta(days=30)).date().isoformat(),
            "new_or_worsening_symptoms": False,
            "immunocompromising_condition": False,
            "immunosuppressant_medicines": False,
        },
        {"type": "infusion-start", "at": ts(start, 20), "rate_ml_per_h": 115},
        {
            "type": "infusion-end",
            "at": ts(start, 80),
            "dose_given": {"value": 300, "unit": "mg"},
            "volume_ml": 115,
        },
        {"type": "observation-start", "at": ts(start, 81)},
        {"type": "discharge", "at": ts(start, 142)},
    ]
    for event in rest:
        r = svc.post(f"/sessions/{sid}/events", json=event)
        assert r.status_code == 201, (event, r.text)
    wait_delivered(svc, [sid])

    found = fhir.get("QuestionnaireResponse", params={"subject": subject}).json()
    assert found["total"] == 1
    response = found["entry"][0]["resource"]
    assert response["status"] == "completed"
    answers = {i["linkId"]: i["answer"][0] for i in response["item"]}
    assert answers["authorized"] == {"valueBoolean": True}
    assert answers["infused"] == {"valueBoolean": True}
    questionnaire = response["questionnaire"].split("|")[0]
    assert count(fhir, "Questionnaire", url=questionnaire) == 1
    for resource in (
        response,
        fhir.get("Questionnaire", params={"url": questionnaire}).json()["entry"][0]["resource"],
    ):
        outcome = fhir.post(f"{resource['resourceType']}/$validate", json=resource).json()
        errors = [i for i in outcome.get("issue", []) if i["severity"] in ("error", "fatal")]
        assert errors == [], errors


def test_premedication_orders_of_another_patient_are_never_linked(
    fhir: httpx.Client, svc: httpx.Client
) -> None:
    mine, theirs = patient(fhir, "Mine"), patient(fhir, "Theirs")
    group = {"system": "urn:ehr:groups", "value": f"G-{uuid.uuid4().hex[:8]}"}
    infusion = order_for(mine, rxnorm="1876366", dose=600, groupIdentifier=group)
    order_id = f"o-{uuid.uuid4().hex[:12]}"
    fhir.put(f"MedicationRequest/{order_id}", json={**infusion, "id": order_id}).raise_for_status()
    assert (
        svc.put(
            f"/fhir/MedicationRequest/{order_id}",
            json={**infusion, "id": order_id},
            headers=FHIR_JSON,
        ).status_code
        == 201
    )
    other_premed = premedication(
        "MedicationRequest/elsewhere", rxnorm="3498", display="diphenhydramine"
    )
    other_premed.update(subject={"reference": theirs}, groupIdentifier=group)
    other_id = push_order(svc, other_premed)
    assert svc.get(f"/orders/{order_id}").json()["linked_orders"] == []

    start = NOW - timedelta(hours=5)
    events = [
        {"type": "check-in", "at": ts(start, 0), "by": "RN Test"},
        {"type": "iv-insertion", "at": ts(start, 4), "site": "left forearm", "gauge": 20},
        {
            "type": "premedication",
            "at": ts(start, 5),
            "drug": "6902",
            "dose": {"value": 100, "unit": "mg"},
            "route": "intravenous",
        },
        {
            "type": "premedication",
            "at": ts(start, 5),
            "drug": "3498",
            "dose": {"value": 50, "unit": "mg"},
            "route": "intravenous",
        },
        {"type": "infusion-start", "at": ts(start, 35), "rate_ml_per_h": 40},
        {"type": "pause", "at": ts(start, 95), "reason": "bathroom"},
        {"type": "resume", "at": ts(start, 110)},
        {
            "type": "infusion-end",
            "at": ts(start, 225),
            "dose_given": {"value": 600, "unit": "mg"},
            "volume_ml": 500,
        },
        {"type": "observation-start", "at": ts(start, 226)},
        {"type": "discharge", "at": ts(start, 290)},
    ]
    view = run_session(svc, order_id, events)
    wait_delivered(svc, [view["id"]])
    delivered = svc.get(f"/sessions/{view['id']}").json()

    billing = delivered["billing"]  # 3 h 10 min from start to end, 15 min paused
    assert (billing["infusion_minutes"], billing["paused_minutes"]) == (175, 15)
    assert [(a["code"], a["units"]) for a in billing["administration"]] == [
        ("96413", 1),
        ("96415", 2),
    ]
    assert (billing["hcpcs"], billing["hcpcs_units"]) == ("J2350", 600)
    names = [p["drug_name"] for p in delivered["premedications"]]
    assert names == ["methylprednisolone", "diphenhydramine"]

    administrations = fhir.get("MedicationAdministration", params={"patient": mine}).json()
    requests = [e["resource"].get("request", {}).get("reference") for e in administrations["entry"]]
    assert f"MedicationRequest/{other_id}" not in requests
    assert (
        count(fhir, "MedicationAdministration", identifier=f"{SYSTEM}|{view['id']}/administration")
        == 1
    )


def test_briumvi_ordered_by_ndc_is_accepted_and_unknown_codes_are_refused(
    fhir: httpx.Client, svc: httpx.Client
) -> None:
    subject = patient(fhir)
    body = order_for(subject, rxnorm="1876366", dose=150)
    body["medicationCodeableConcept"] = {
        "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "73150-0150-06"}],
        "text": "Briumvi 150 mg",
    }
    order_id = push_order(svc, body, fhir)  # HAPI takes the same order
    view = svc.get(f"/orders/{order_id}").json()
    assert (view["drug"]["key"], view["drug"]["ndc"]) == ("ublituximab", "73150-0150-06")
    body["medicationCodeableConcept"]["coding"][0]["code"] = "50242-0554-01"  # not in catalog
    refused = svc.put("/fhir/MedicationRequest/unknown-ndc", json={**body, "id": "unknown-ndc"})
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["code"] == "code-invalid"
