"""Several service processes share one outbox on PostgreSQL and deliver every write-back
to the live HAPI sandbox exactly once, and a killed one's leased work is finished by the
others once its lease runs out.

Which process delivered what comes from each process's own log (the worker's `delivered`
line names the outbox row); the outbox itself records no owner. The EHR is reached through
a gate that holds the write-back POSTs until the test opens it, so that the workers' lanes
are full and a backlog waits for them all at once (or, for the kill, so that the victim is
caught holding a lease). Bounded, loopback only.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import col, select

from harness.ehr_state import ehr_order, ehr_patient
from harness.gate_proxy import gate_proxy
from harness.postgres import postgres_server
from harness.service_process import replicas, service_process
from harness.staff_auth import StaffAuth, trusting_env
from harness.timelines import completed_timeline, run_session, start_of_yesterday
from sandbox.hapi_server import HapiSandbox
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.store.db import make_engine, transaction
from services.infusion_bridge.store.tables import OutboxRow

REPLICAS = 3
LANES = 2  # INFUSION_DELIVERY_CONCURRENCY of each process
PATIENTS = 10  # more than all lanes together: a patient's deliveries go one at a time
SESSIONS = 30
VITALS = 2
OBSERVATIONS_PER_VITALS = 5
ADMINISTRATIONS_PER_SESSION = 3  # ocrelizumab and its two premedications


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """The module's PostgreSQL with an empty schema (the first replica migrates it)."""
    engine = make_engine(pg_server)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return pg_server


def _env(keycloak: KeycloakSandbox, ehr_base_url: str, **settings: object) -> dict[str, str]:
    """A replica with its write-back worker on, sending to ``ehr_base_url``."""
    return {
        **trusting_env(keycloak),
        "INFUSION_DELIVERY_ENABLED": "true",
        "INFUSION_EHR_BASE_URL": ehr_base_url,
        "INFUSION_EHR_TIMEOUT_SECONDS": "60",  # longer than the gate holds a Bundle
        "INFUSION_EHR_HISTORY_ON_ORDER": "false",
        "INFUSION_LOG_LEVEL": "INFO",  # the worker's `delivered` lines
        **{f"INFUSION_{name.upper()}": str(value) for name, value in settings.items()},
    }


def _document(
    url: str, staff: StaffAuth, order_id: str, days_ago: int, vitals: int = VITALS
) -> str:
    """One ocrelizumab session, check-in to discharge, charted through ``url``; its id."""
    with httpx.Client(base_url=url, auth=staff, timeout=60) as svc:
        start = start_of_yesterday() - timedelta(days=days_ago)
        session: dict[str, Any] = run_session(
            svc, order_id, completed_timeline(start, vitals=vitals)
        )
        return str(session["id"])


def _outbox(database_url: str) -> list[OutboxRow]:
    engine = make_engine(database_url)
    try:
        with transaction(engine) as db:
            return list(db.exec(select(OutboxRow).order_by(col(OutboxRow.id))).all())
    finally:
        engine.dispose()


def _wait_delivered(database_url: str, expected: int, timeout: float) -> list[OutboxRow]:
    deadline = time.monotonic() + timeout
    rows: list[OutboxRow] = []
    while time.monotonic() < deadline:
        rows = _outbox(database_url)
        if len(rows) == expected and all(r.status == "delivered" for r in rows):
            return rows
        time.sleep(0.3)
    statuses = Counter(r.status for r in rows)
    raise AssertionError(
        f"{expected} deliveries not all delivered within {timeout:.0f} s: {len(rows)} rows, "
        f"{dict(statuses)}; last errors: {[r.last_error for r in rows if r.last_error][:3]}"
    )


def _delivered_by(log: Path) -> list[int]:
    """Outbox rows this process's worker delivered, from its JSON log lines."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "delivered":
            found.append(int(entry["delivery"]))
    return found


def _session_of(bundle: bytes) -> str:
    """The session a held write-back Bundle belongs to (identifiers are ``<session>/<part>``)."""
    entry = json.loads(bundle)["entry"][0]["resource"]
    identifier = entry["identifier"]
    value: str = (identifier[0] if isinstance(identifier, list) else identifier)["value"]
    return value.split("/", 1)[0]


def _copies_at_the_ehr(fhir: httpx.Client, rows: list[OutboxRow]) -> Counter[str]:
    """How many resources the EHR holds for each conditional create of these Bundles: one
    search per entry, by the business identifier (or tag) the entry's ``ifNoneExist``
    names, sent as batch Bundles."""
    searches = [
        f"{entry['request']['url']}?{entry['request']['ifNoneExist']}"
        for row in rows
        for entry in (row.payload or {}).get("entry", [])
    ]
    copies: Counter[str] = Counter()
    for first in range(0, len(searches), 100):
        chunk = searches[first : first + 100]
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"{search}&_summary=count"}}
                for search in chunk
            ],
        }
        answer = fhir.post("", json=batch)
        answer.raise_for_status()
        for search, entry in zip(chunk, answer.json()["entry"], strict=True):
            assert entry["response"]["status"].startswith("200"), (search, entry)
            copies[search] = entry["resource"]["total"]
    return copies


def _count(fhir: httpx.Client, resource_type: str, **params: str) -> int:
    found = fhir.get(resource_type, params={**params, "_summary": "count"})
    found.raise_for_status()
    return int(found.json()["total"])


def test_three_replicas_deliver_every_writeback_exactly_once(
    pg_url: str,
    fhir: httpx.Client,
    sandbox: HapiSandbox,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    tmp_path: Path,
) -> None:
    """30 sessions of 10 patients, charted through three replicas whose workers all send
    through the closed gate: every lane of every process fills, the rest waits, and once
    the gate opens the three compete for the backlog. Each row is claimed and delivered
    once, by one process; each resource exists once at the EHR."""
    with gate_proxy(sandbox.base_url) as (ehr_url, gate):
        env = _env(
            keycloak,
            ehr_url,
            delivery_concurrency=LANES,
            delivery_poll_seconds=0.2,
            delivery_lease_seconds=600,  # nobody dies here: no lease may run out at the gate
        )
        with replicas(pg_url, tmp_path, REPLICAS, extra_env=env) as urls:
            patients = [ehr_patient(fhir) for _ in range(PATIENTS)]
            with httpx.Client(base_url=urls[0], auth=staff, timeout=60) as svc:
                orders = [ehr_order(fhir, svc, patient) for patient in patients]
            # nurses at several chairs, each app talking to another replica
            with ThreadPoolExecutor(REPLICAS) as nurses:
                charted = [
                    nurses.submit(
                        _document, urls[n % REPLICAS], staff, orders[n % PATIENTS], n // PATIENTS
                    )
                    for n in range(SESSIONS)
                ]
                session_patient = {
                    future.result(): patients[n % PATIENTS] for n, future in enumerate(charted)
                }

            # Every lane of every process holds a Bundle at the gate: more Bundles in flight
            # at once than one process may send, each of another session.
            assert gate.wait_held(REPLICAS * LANES, timeout=30), (
                f"only {len(gate.held)} Bundles reached the EHR's gate"
            )
            time.sleep(1)  # no lane is free: nothing more may arrive
            held = [_session_of(body) for body in gate.held]
            assert len(held) == REPLICAS * LANES, held
            assert len(set(held)) == len(held), held
            backlog = _outbox(pg_url)
            assert Counter(r.status for r in backlog) == {
                "delivering": REPLICAS * LANES,
                "pending": SESSIONS - REPLICAS * LANES,
            }

            gate.open()
            rows = _wait_delivered(pg_url, SESSIONS, timeout=60)
    # the replicas have stopped: their logs are complete

    assert sorted(r.session_id for r in rows) == sorted(session_patient)
    assert [r.attempts for r in rows] == [1] * SESSIONS  # no row was claimed twice
    assert all(e["status"].startswith("201") for r in rows for e in (r.response or {})["entries"])
    by_process = [_delivered_by(tmp_path / f"replica-{i}.log") for i in range(REPLICAS)]
    deliveries = Counter(row_id for rows_of in by_process for row_id in rows_of)
    assert deliveries == Counter({r.id: 1 for r in rows}), "each row delivered once, by one"
    assert all(by_process), [len(d) for d in by_process]  # every process delivered some

    copies = _copies_at_the_ehr(fhir, rows)
    assert len(copies) == SESSIONS * (
        1 + ADMINISTRATIONS_PER_SESSION + VITALS * OBSERVATIONS_PER_VITALS + 1
    )  # Encounter, administrations, vital signs, Procedure (IV insertion)
    assert {search: n for search, n in copies.items() if n != 1} == {}
    sessions_per_patient = Counter(session_patient.values())
    for patient, sessions in sessions_per_patient.items():
        assert _count(fhir, "MedicationAdministration", patient=patient) == (
            sessions * ADMINISTRATIONS_PER_SESSION
        )
        assert _count(fhir, "Observation", patient=patient, category="vital-signs") == (
            sessions * VITALS * OBSERVATIONS_PER_VITALS
        )


LEASE_SECONDS = 8


def test_a_killed_replicas_leased_delivery_is_finished_by_the_others(
    pg_url: str,
    fhir: httpx.Client,
    sandbox: HapiSandbox,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    tmp_path: Path,
) -> None:
    """The victim sends to the EHR through the gate, the two others straight; it is killed
    while its Bundle waits there. The gate then lets that Bundle reach the EHR (the EHR has
    it, the victim never heard), and once the lease runs out another process takes the row
    again: the EHR answers with what it already holds."""
    common = {
        "delivery_lease_seconds": LEASE_SECONDS,
        # the survivors look rarely, so that the victim (woken by its own sessions) wins
        "delivery_poll_seconds": 1,
    }
    with gate_proxy(sandbox.base_url) as (gated_url, gate), ExitStack() as stack:
        for i in range(2):
            stack.enter_context(
                service_process(
                    pg_url,
                    tmp_path / f"survivor-{i}.log",
                    extra_env=_env(keycloak, sandbox.base_url, **common),
                )
            )
        victim, victim_pid = stack.enter_context(
            service_process(
                pg_url,
                tmp_path / "victim.log",
                extra_env=_env(keycloak, gated_url, delivery_concurrency=1, **common),
            )
        )
        sessions: list[tuple[str, str]] = []
        for _ in range(6):  # until the victim holds a delivery
            patient = ehr_patient(fhir)
            with httpx.Client(base_url=victim, auth=staff, timeout=60) as svc:
                order_id = ehr_order(fhir, svc, patient)
            sessions.append((_document(victim, staff, order_id, 0, vitals=1), patient))
            if gate.wait_held(1, timeout=3):
                break
        else:
            pytest.fail(f"the victim never took a delivery: the others got all {len(sessions)}")
        os.kill(victim_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        (orphan,) = [_session_of(body) for body in gate.held]  # one lane: one lease

        gate.open()  # the EHR commits the dead process's Bundle
        assert gate.wait_answered(1, timeout=30), "the EHR did not answer the released Bundle"
        row = next(r for r in _outbox(pg_url) if r.session_id == orphan)
        assert (row.status, row.attempts) == ("delivering", 1), (
            f"the victim's lease should still hold {time.monotonic() - killed_at:.1f} s "
            f"after the kill (lease {LEASE_SECONDS} s)"
        )

        rows = _wait_delivered(pg_url, len(sessions), timeout=LEASE_SECONDS + 45)
        stack.close()  # stop the survivors: their logs are complete

    taken_over = next(r for r in rows if r.session_id == orphan)
    assert taken_over.attempts == 2  # the victim's, then one survivor's
    assert taken_over.delivered_at is not None
    # not before the victim's lease (taken after the row was queued) had run out
    assert taken_over.delivered_at - taken_over.created_at >= timedelta(seconds=LEASE_SECONDS)
    # the EHR already had everything: each conditional create matched the first copy
    assert all(e["status"].startswith("200") for e in (taken_over.response or {})["entries"])
    assert _delivered_by(tmp_path / "victim.log") == []
    by_survivors = Counter(
        row_id for i in range(2) for row_id in _delivered_by(tmp_path / f"survivor-{i}.log")
    )
    assert by_survivors == Counter({r.id: 1 for r in rows})
    copies = _copies_at_the_ehr(fhir, rows)
    assert {search: n for search, n in copies.items() if n != 1} == {}
    for session_id, patient in sessions:
        assert _count(fhir, "Encounter", patient=patient) == 1, session_id
