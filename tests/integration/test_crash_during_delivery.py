"""SIGKILL the service while the EHR is committing its Bundles: after a restart the outbox
finishes the job and the EHR holds exactly one copy of everything."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from harness.ehr_state import SYSTEM, count, ehr_order, ehr_patient, wait_delivered
from harness.service_process import service_process as harness_service_process
from harness.slow_proxy import slow_proxy
from harness.staff_auth import StaffAuth
from harness.timelines import completed_timeline, run_session, start_of_yesterday
from sandbox.hapi_server import HapiSandbox
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.store.db import make_engine, transaction
from services.infusion_bridge.store.outbox import list_deliveries

SESSIONS = 3


@contextmanager
def service_process(
    db: Path, ehr_base_url: str, log: Path, issuer: str
) -> Iterator[tuple[str, int]]:
    """The service in its own process, delivering (a 3 s lease, a 30 s EHR timeout): yields
    (base URL, pid)."""
    with harness_service_process(
        f"sqlite:///{db}",
        log,
        extra_env={
            "INFUSION_EHR_BASE_URL": ehr_base_url,
            "INFUSION_DELIVERY_ENABLED": "true",
            "INFUSION_DELIVERY_POLL_SECONDS": "0.5",
            "INFUSION_DELIVERY_LEASE_SECONDS": "3",
            "INFUSION_EHR_TIMEOUT_SECONDS": "30",
            "INFUSION_AUTH_ISSUER": issuer,
        },
    ) as running:
        yield running


def test_sigkill_mid_delivery_then_restart_delivers_each_resource_once(
    fhir: httpx.Client,
    sandbox: HapiSandbox,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "store.db", tmp_path / "service.log"
    patient = ehr_patient(fhir)
    with (
        slow_proxy(sandbox.base_url, delay=30) as (proxy_url, forwarded),
        service_process(db, proxy_url, log, keycloak.issuer) as (url, pid),
        httpx.Client(base_url=url, auth=staff) as svc,
    ):
        order_id = ehr_order(fhir, svc, patient)
        sids = [
            run_session(svc, order_id, completed_timeline(start_of_yesterday(), vitals=2))["id"]
            for _ in range(SESSIONS)
        ]
        assert forwarded.wait(30), "no Bundle reached the EHR"
        time.sleep(1)  # let HAPI commit what the proxy forwarded
        os.kill(pid, signal.SIGKILL)  # leaving the block reaps it

    with transaction(make_engine(f"sqlite:///{db}")) as store:
        statuses = sorted(d.status for d in list_deliveries(store))
    assert "delivering" in statuses, statuses  # the kill really came mid-delivery
    assert count(fhir, "Encounter", patient=patient) >= 1  # and the EHR already has some of it

    with (
        service_process(db, sandbox.base_url, log, keycloak.issuer) as (url, _),
        httpx.Client(base_url=url, auth=staff) as svc,
    ):
        wait_delivered(svc, sids, timeout=60)
    for sid in sids:
        assert count(fhir, "Encounter", identifier=f"{SYSTEM}|{sid}/encounter") == 1
        assert (
            count(fhir, "MedicationAdministration", identifier=f"{SYSTEM}|{sid}/administration")
            == 1
        )
    assert count(fhir, "Encounter", patient=patient) == SESSIONS
    assert count(fhir, "Observation", patient=patient) == SESSIONS * 2 * 5
