"""SIGKILL the service while the EHR is committing its Bundles: after a restart the outbox
finishes the job and the EHR holds exactly one copy of everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from harness.ehr_state import SYSTEM, count, ehr_order, ehr_patient, wait_delivered
from harness.live_service import free_port
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
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "INFUSION_DATABASE_URL": f"sqlite:///{db}",
        "INFUSION_EHR_BASE_URL": ehr_base_url,
        "INFUSION_PORT": str(port),
        "INFUSION_SYNC_INTERVAL_SECONDS": "0",
        "INFUSION_DELIVERY_POLL_SECONDS": "0.5",
        "INFUSION_DELIVERY_LEASE_SECONDS": "3",
        "INFUSION_EHR_TIMEOUT_SECONDS": "30",
        "INFUSION_AUTH_ISSUER": issuer,
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.infusion_bridge.cli", "serve"],
            env=env,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"service did not start; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


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
        service_process(db, proxy_url, log, keycloak.issuer) as (url, proc),
        httpx.Client(base_url=url, auth=staff) as svc,
    ):
        order_id = ehr_order(fhir, svc, patient)
        sids = [
            run_session(svc, order_id, completed_timeline(start_of_yesterday(), vitals=2))["id"]
            for _ in range(SESSIONS)
        ]
        assert forwarded.wait(30), "no Bundle reached the EHR"
        time.sleep(1)  # let HAPI commit what the proxy forwarded
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

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
