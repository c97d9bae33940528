"""Completed sessions reach the real EHR exactly once: normal, repeated, EHR down, dead-letter."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from harness.ehr_state import SYSTEM, count, ehr_order, ehr_patient, wait_delivered
from harness.live_service import running_service
from harness.staff_auth import StaffAuth, trusting
from harness.timelines import completed_timeline, run_session, start_of_yesterday
from sandbox.hapi_server import HapiSandbox
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.settings import Settings
from services.infusion_bridge.store.db import make_engine, transaction
from services.infusion_bridge.store.tables import OutboxRow

VITALS_EVENTS = 3
OBSERVATIONS_PER_VITALS = 5  # BP panel, heart rate, respiratory rate, temperature, SpO2


def _settings(
    tmp_path: Path, sandbox: HapiSandbox, keycloak: KeycloakSandbox, **extra: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'store.db'}",
        "ehr_base_url": sandbox.base_url,
        "sync_interval_seconds": 0,
        "delivery_poll_seconds": 0.5,
        "delivery_retry_base_seconds": 0.5,
        "delivery_retry_cap_seconds": 3,
        "log_format": "console",
        **trusting(keycloak),
    }
    return Settings(**(values | extra))


def _expect_one_copy(fhir: httpx.Client, session_id: str, patient: str) -> None:
    assert count(fhir, "Encounter", identifier=f"{SYSTEM}|{session_id}/encounter") == 1
    assert (
        count(fhir, "MedicationAdministration", identifier=f"{SYSTEM}|{session_id}/administration")
        == 1
    )


def test_completed_session_lands_in_the_ehr_searchable_by_patient(
    fhir: httpx.Client,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    sandbox: HapiSandbox,
    tmp_path: Path,
) -> None:
    patient = ehr_patient(fhir)
    with (
        running_service(_settings(tmp_path, sandbox, keycloak)) as url,
        httpx.Client(base_url=url, auth=staff) as svc,
    ):
        order_id = ehr_order(fhir, svc, patient)
        sid = run_session(
            svc, order_id, completed_timeline(start_of_yesterday(), vitals=VITALS_EVENTS)
        )["id"]
        wait_delivered(svc, [sid])
        delivery = svc.get(f"/sessions/{sid}").json()["deliveries"][0]
        assert delivery["attempts"] == 1
        assert all(e["status"].startswith("201") for e in delivery["response"]["entries"])

    administrations = fhir.get("MedicationAdministration", params={"patient": patient}).json()
    assert administrations["total"] == 3  # the infusion, IV methylprednisolone, diphenhydramine
    infusion = next(
        e["resource"]
        for e in administrations["entry"]
        if e["resource"]["status"] == "completed" and e["resource"].get("request")
    )
    assert infusion["request"]["reference"] == f"MedicationRequest/{order_id}"
    assert infusion["dosage"]["dose"]["value"] == 600
    vitals = fhir.get("Observation", params={"patient": patient, "category": "vital-signs"}).json()
    assert vitals["total"] == VITALS_EVENTS * OBSERVATIONS_PER_VITALS
    assert count(fhir, "Encounter", patient=patient) == 1
    assert count(fhir, "Procedure", patient=patient) == 1


def test_delivering_the_same_session_twice_leaves_one_copy(
    fhir: httpx.Client,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    sandbox: HapiSandbox,
    tmp_path: Path,
) -> None:
    patient = ehr_patient(fhir)
    settings = _settings(tmp_path, sandbox, keycloak)
    with running_service(settings) as url, httpx.Client(base_url=url, auth=staff) as svc:
        order_id = ehr_order(fhir, svc, patient)
        sid = run_session(
            svc, order_id, completed_timeline(start_of_yesterday(), vitals=VITALS_EVENTS)
        )["id"]
        wait_delivered(svc, [sid])
        before = count(fhir, "Observation", patient=patient)
        # as if the reply had been lost: the row goes back to pending and is sent again
        with transaction(make_engine(settings.database_url)) as db:
            db.execute(update(OutboxRow).values(status="pending", delivered_at=None))
        svc.post(f"/deliveries/{svc.get('/deliveries').json()[0]['id']}/retry")
        wait_delivered(svc, [sid])
        delivery = svc.get(f"/sessions/{sid}").json()["deliveries"][0]
        assert delivery["attempts"] == 2
        assert all(e["status"].startswith("200") for e in delivery["response"]["entries"])
    assert (
        count(fhir, "Observation", patient=patient)
        == before
        == VITALS_EVENTS * OBSERVATIONS_PER_VITALS
    )
    assert count(fhir, "MedicationAdministration", patient=patient) == 3
    _expect_one_copy(fhir, sid, patient)


def test_ehr_refusal_goes_to_dead_letter_and_a_retry_after_the_fix_delivers(
    fhir: httpx.Client,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    sandbox: HapiSandbox,
    tmp_path: Path,
) -> None:
    real_patient = ehr_patient(fhir)
    with (
        running_service(_settings(tmp_path, sandbox, keycloak)) as url,
        httpx.Client(base_url=url, auth=staff) as svc,
    ):
        order_id = ehr_order(fhir, svc, real_patient)
        # the cached order names a patient the EHR does not know (yet)
        ghost = f"ghost-{uuid.uuid4().hex[:10]}"
        order = svc.get(f"/fhir/MedicationRequest/{order_id}").json()
        order["subject"] = {"reference": f"Patient/{ghost}"}
        order.pop("meta")
        svc.put(f"/fhir/MedicationRequest/{order_id}", json=order).raise_for_status()
        sid = run_session(svc, order_id, completed_timeline(start_of_yesterday(), vitals=1))["id"]

        deadline = time.monotonic() + 30
        dead: list[dict[str, Any]] = []
        while not dead and time.monotonic() < deadline:
            dead = svc.get("/deliveries", params={"status": "dead"}).json()
            time.sleep(0.3)
        assert [d["session_id"] for d in dead] == [sid]
        assert dead[0]["outcome"]["resourceType"] == "OperationOutcome"
        assert ghost in dead[0]["last_error"]

        fhir.put(
            f"Patient/{ghost}", json={"resourceType": "Patient", "id": ghost}
        ).raise_for_status()
        retried = svc.post(f"/deliveries/{dead[0]['id']}/retry")
        assert retried.status_code == 202
        wait_delivered(svc, [sid])
    _expect_one_copy(fhir, sid, f"Patient/{ghost}")


@pytest.mark.disruptive
def test_sessions_completed_while_the_ehr_is_down_are_all_delivered_after_it_returns(
    fhir: httpx.Client,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    sandbox: HapiSandbox,
    tmp_path: Path,
) -> None:
    patient = ehr_patient(fhir)
    with (
        running_service(_settings(tmp_path, sandbox, keycloak)) as url,
        httpx.Client(base_url=url, auth=staff, timeout=30) as svc,
    ):
        order_id = ehr_order(fhir, svc, patient)
        sandbox.stop()
        try:
            sids = [
                run_session(svc, order_id, completed_timeline(start_of_yesterday(), vitals=2))["id"]
                for _ in range(3)
            ]
            time.sleep(2)
            waiting = svc.get("/deliveries", params={"status": "pending"}).json()
            assert sorted(d["session_id"] for d in waiting) == sorted(sids)
            assert all(d["attempts"] >= 1 and "unreachable" in d["last_error"] for d in waiting)
        finally:
            sandbox.start()
        wait_delivered(svc, sids, timeout=120)
    with httpx.Client(base_url=sandbox.base_url + "/", timeout=30) as ehr:
        for sid in sids:
            _expect_one_copy(ehr, sid, patient)
        assert count(ehr, "Encounter", patient=patient) == 3
