"""Benchmark 5 — operations: readiness while the EHR hangs, and the cost of a /metrics scrape.

Load comes from ``ab`` (apache2-utils), a native load generator, so the client's own CPU does
not blur the figures. Both phases start the service as its own process (no HAPI needed).

1. Readiness, EHR hung: the EHR is a socket that accepts connections and never answers; one
   completed session is queued so the delivery worker's call hangs on it too (10 s read
   timeout). ``ab -n N -c 25 /health/ready`` (all 503, as they should be) next to
   ``ab -n N -c 25 /health/live`` in the same run (the HTTP floor of the same process).
2. ``/metrics`` with a big outbox: ``--ops-outbox`` (20000) deliveries (all but 100 delivered,
   50 dead), then ``ab -n N -c 4 /metrics`` next to ``/health/live`` at the same concurrency.
   A scrape counts the outbox by status (an index scan), so it grows with the table.

    .venv/bin/python -m bench --only operations [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from bench._common import Hapi, Service, machine_note, remove_scratch, say
from bench.load_generators import load
from harness.fhir_payloads import medication_request
from harness.hung_ehr import hung_ehr
from harness.timelines import completed_timeline, run_session, start_of_yesterday
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.store.db import make_engine, migrate, transaction
from services.infusion_bridge.store.tables import OutboxRow
from services.infusion_bridge.usecases.order_intake import prepare_order, store_order
from services.infusion_bridge.usecases.sessions import start_session

NEEDS_HAPI = False
FHIR = {"Content-Type": "application/fhir+json"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("operations")
    group.add_argument("--ops-requests", type=int, help="requests per ab run (2000; quick 300)")
    group.add_argument(
        "--ops-outbox", type=int, help="outbox rows for /metrics (20000; quick 2000)"
    )


def ab(url: str, requests: int, concurrency: int, *, bearer: str | None = None) -> dict[str, Any]:
    """GETs under ``ab`` (``bench.load_generators``), signed in only with ``bearer``."""
    return load("ab", url, None, requests, concurrency, bearer=bearer, sign_in=bearer is not None)


def readiness_phase(tmp: Path, requests: int) -> dict[str, Any]:
    with hung_ehr() as ehr:
        service = Service(tmp / "ready.db", ehr, tmp / "ready.log").start()
        try:
            with httpx.Client(
                base_url=service.base_url, timeout=30, headers=service.auth_headers
            ) as svc:
                svc.put(
                    "/fhir/MedicationRequest/ocr-b",
                    json=medication_request(id="ocr-b"),
                    headers=FHIR,
                ).raise_for_status()
                run_session(svc, "ocr-b", completed_timeline(start_of_yesterday(), vitals=1))
                ready = ab(f"{service.base_url}/health/ready", requests, 25)
                status = svc.get("/deliveries").json()[0]["status"]
            live = ab(f"{service.base_url}/health/live", requests, 25)
        finally:
            service.stop()
    say(f"delivery while measuring: {status}")
    return {"ready": ready, "live": live, "delivery_status": status}


def arrange_outbox(db_path: Path, rows: int) -> None:
    engine = make_engine(f"sqlite:///{db_path}")
    migrate(engine)
    now = datetime.now(UTC)
    resource = medication_request(id="ocr-m")
    with transaction(engine) as db:
        store_order(db, prepare_order(resource, load_catalog()), source="bench", now=now)
    sid = start_session(engine, "ocr-m", now=now).id
    values = []
    for i in range(rows):
        status = "pending" if i >= rows - 100 else "dead" if i < 50 else "delivered"
        values.append(
            {
                "session_id": sid,
                "status": status,
                "attempts": 1,
                "next_attempt_at": now,
                "created_at": now - timedelta(seconds=rows - i),
                "updated_at": now,
                "payload": {"resourceType": "Bundle"},
            }
        )
    with transaction(engine) as db:
        db.execute(insert(OutboxRow), values)
    engine.dispose()


def metrics_phase(tmp: Path, requests: int, rows: int) -> dict[str, Any]:
    arrange_outbox(tmp / "metrics.db", rows)
    service = Service(
        tmp / "metrics.db",
        "http://127.0.0.1:9/fhir",  # nothing listens: the probe fails fast
        tmp / "metrics.log",
        extra_env={"INFUSION_DELIVERY_ENABLED": "false"},
    ).start()
    try:
        # sign-in is on, as in production: the scrape carries a bearer token (a scraper's)
        scrape_headers = service.auth_headers
        body = httpx.get(f"{service.base_url}/metrics", headers=scrape_headers).text
        bearer = scrape_headers["Authorization"].removeprefix("Bearer ")
        scrape = ab(f"{service.base_url}/metrics", requests, 4, bearer=bearer)
        live = ab(f"{service.base_url}/health/live", requests, 4)
    finally:
        service.stop()
    return {"rows": rows, "bytes": len(body), "metrics": scrape, "live": live}


def _line(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name:<28} {r['rate']:>8.0f} req/s  p50 {r['p50_ms']:>5.0f} ms  "
        f"p99 {r['p99_ms']:>5.0f} ms  max {r['p100_ms']:>5.0f} ms  non-2xx {r['non_2xx']}  "
        f"failed {r['failed']}"
    )


async def run(args: argparse.Namespace, hapi: Hapi) -> dict[str, Any]:
    del hapi
    requests = args.ops_requests or (300 if args.quick else 2000)
    rows = args.ops_outbox or (2000 if args.quick else 20000)
    say(f"== operations: {requests} requests per ab run; machine: {machine_note()}")
    tmp = Path(tempfile.mkdtemp(prefix="infusion-bench-ops-"))
    try:
        ready = readiness_phase(tmp, requests)
        say(_line("/health/ready (EHR hung)", ready["ready"]))
        say(_line("/health/live (same run)", ready["live"]))
        metrics = metrics_phase(tmp, requests, rows)
        say(_line(f"/metrics ({rows} outbox rows)", metrics["metrics"]))
        say(_line("/health/live (same run)", metrics["live"]))
        ratio = metrics["live"]["rate"] / metrics["metrics"]["rate"]
        say(f"a scrape costs {ratio:.1f}x a liveness probe; body {metrics['bytes']} bytes")
    finally:
        remove_scratch(tmp)
    return {"readiness": ready, "metrics": metrics, "machine_after": machine_note()}
