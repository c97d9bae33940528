"""Clinician reads for one patient with many finished sessions (issue: history, list, page).

Arrange (not timed): a scratch SQLite store with one patient and ``--patient-sessions``
(200) completed ocrelizumab sessions of ``--vitals`` (10) vital-sign sets each, written
through the same domain code the nurse API uses (order intake, ``record_event``), so each
session also has its FHIR record and an outbox row. Then the service runs on that store
(worker and sync off; no EHR needed) and each read is requested ``--reads`` times in a
row after a warm-up. The baseline in the same run is the service's own floor:
``GET /health/live`` (no database) and ``GET /orders/{id}`` (one primary-key read).
Aim: history, list and session page each under 100 ms for that patient.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter

from bench._common import Hapi, LoadResult, Service, machine_note, remove_scratch, run_load, say
from fhir_mappings.medication_request import order_from_fhir
from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.domain.session_events import SessionEvent
from services.infusion_bridge.store.db import make_engine, migrate, write_transaction
from services.infusion_bridge.usecases.order_intake import PreparedOrder, store_order
from services.infusion_bridge.usecases.sessions import append_event, start_session

AIM_MS = 100.0
NEEDS_HAPI = False  # reads never reach the EHR
PATIENT = "Patient/bench-clinician"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("clinician")
    group.add_argument("--patient-sessions", type=int, help="finished sessions (200; quick 40)")
    group.add_argument("--reads", type=int, default=60, help="timed requests per read (60)")


def arrange(db_path: Path, sessions: int, vitals: int) -> list[str]:
    """The store with one patient's finished sessions; returns the session ids."""
    engine = make_engine(f"sqlite:///{db_path}")
    migrate(engine)
    catalog = load_catalog()
    resource = medication_request(id="bench-order", subject={"reference": PATIENT})
    now = datetime.now(UTC)
    with write_transaction(engine) as db:
        order = order_from_fhir(resource, catalog)
        store_order(db, PreparedOrder(order, resource), source="bench", now=now)
    events: TypeAdapter[SessionEvent] = TypeAdapter(SessionEvent)
    first = now - timedelta(weeks=2 * sessions)
    ids = []
    for n in range(sessions):
        sid = start_session(engine, "bench-order", now=now).id
        for raw in completed_timeline(first + timedelta(weeks=2 * n), vitals=vitals):
            append_event(
                engine,
                sid,
                events.validate_python(raw),
                catalog=catalog,
                identifier_system="urn:bench",
                now=now,
            )
        ids.append(sid)
        if (n + 1) % 25 == 0:
            say(f"  arranged {n + 1}/{sessions} sessions")
    engine.dispose()
    return ids


async def run(args: argparse.Namespace, hapi: Hapi) -> dict[str, Any]:
    del hapi  # reads never reach the EHR
    n = args.patient_sessions or (40 if args.quick else 200)
    reads = 20 if args.quick else args.reads
    say(f"== clinician: 1 patient, {n} sessions x {args.vitals} vitals; machine: {machine_note()}")
    tmp = Path(tempfile.mkdtemp(prefix="infusion-bench-clinician-"))
    t0 = time.perf_counter()
    sids = arrange(tmp / "bench.db", n, args.vitals)
    say(f"arranged in {time.perf_counter() - t0:.0f} s")
    middle = sids[len(sids) // 2]
    patient_id = PATIENT.split("/")[1]
    reads_to_time = {
        "baseline: GET /health/live": "/health/live",
        "baseline: GET /orders/{id}": "/orders/bench-order",
        "history: GET /patients/{id}/infusions": f"/patients/{patient_id}/infusions",
        "list: GET /sessions?patient= (50 per page)": f"/sessions?patient={patient_id}",
        "list page: GET /ui/sessions?patient=": f"/ui/sessions?patient={patient_id}",
        "session page: GET /ui/sessions/{id}": f"/ui/sessions/{middle}",
        "session record: GET /sessions/{id}": f"/sessions/{middle}",
        "FHIR: GET /fhir/Observation?patient=&category=vital-signs": (
            f"/fhir/Observation?patient={PATIENT}&category=vital-signs&_count=50"
        ),
    }
    service = Service(
        db_path=tmp / "bench.db",
        ehr_base_url="http://127.0.0.1:9/fhir",
        log_path=tmp / "service.log",
        extra_env={"INFUSION_DELIVERY_ENABLED": "false", "INFUSION_AUTO_MIGRATE": "false"},
    ).start()
    results: dict[str, Any] = {"sessions": n, "vitals_per_session": args.vitals, "reads": {}}
    try:
        async with httpx.AsyncClient(
            base_url=service.base_url, headers=service.auth_headers, timeout=30
        ) as client:
            for label, path in reads_to_time.items():
                for _ in range(5):  # warm-up: template compile, caches
                    (await client.get(path)).raise_for_status()
                result: LoadResult = await run_load(
                    label,
                    client,
                    [("GET", path, b"")] * reads,
                    concurrency=1,
                    time_limit=args.time_limit,
                    check=lambda r: r.status_code == 200,
                    progress_every=30,
                    cpu_pids={"service": service.pid},
                )
                say("  " + result.line())
                results["reads"][label] = result.as_dict()
    finally:
        service.stop()
        remove_scratch(tmp)
    for label in [k for k in reads_to_time if not k.startswith("baseline")][:4]:
        p50 = results["reads"][label]["p50_ms"]
        verdict = "MET" if p50 < AIM_MS else "NOT MET"
        say(f"  aim < {AIM_MS:.0f} ms: {label}: p50 {p50:.1f} ms [{verdict}]")
    return results
