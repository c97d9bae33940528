"""The nurse API under a busy infusion center: many sessions charted at once.

Arrange: ``--nurse-orders`` (8) active orders in a scratch store. Measure: ``--nurse-sessions``
(40) complete sessions (check-in to discharge, 10 vital-sign sets: 17 events each) driven
through ``POST /sessions`` and ``POST /sessions/{id}/events``, ``--nurse-concurrency`` (8)
sessions at a time, each posting its events in order. The worker is off, so this is the
charting cost alone (discharge includes building and storing the FHIR record). Baseline in
the same run: ``GET /health/live`` at the same concurrency (the HTTP floor of this process).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    Hapi,
    LoadResult,
    Service,
    machine_note,
    percentile,
    remove_scratch,
    run_load,
    say,
)
from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline, start_of_yesterday

NEEDS_HAPI = False
FHIR = {"Content-Type": "application/fhir+json"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("nurse")
    group.add_argument("--nurse-sessions", type=int, help="sessions charted (40; quick 16)")
    group.add_argument("--nurse-concurrency", type=int, default=8, help="sessions at once (8)")
    group.add_argument("--nurse-orders", type=int, default=8, help="orders they are for (8)")


async def run(args: argparse.Namespace, hapi: Hapi) -> dict[str, Any]:
    del hapi
    n = args.nurse_sessions or (16 if args.quick else 40)
    conc = args.nurse_concurrency
    say(f"== nurse: {n} sessions, {conc} at a time; machine: {machine_note()}")
    tmp = Path(tempfile.mkdtemp(prefix="infusion-bench-nurse-"))
    service = Service(
        db_path=tmp / "bench.db",
        ehr_base_url="http://127.0.0.1:9/fhir",
        log_path=tmp / "service.log",
        extra_env={"INFUSION_DELIVERY_ENABLED": "false"},
    ).start()
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(
            base_url=service.base_url, headers=service.auth_headers, timeout=60
        ) as client:
            for i in range(args.nurse_orders):
                body = medication_request(id=f"nurse-{i}")
                (
                    await client.put(f"/fhir/MedicationRequest/nurse-{i}", json=body, headers=FHIR)
                ).raise_for_status()
            floor: LoadResult = await run_load(
                "baseline: GET /health/live",
                client,
                [("GET", "/health/live", b"")] * 300,
                concurrency=conc,
                time_limit=args.time_limit,
                check=lambda r: r.status_code == 200,
            )
            say("  " + floor.line())
            gate = asyncio.Semaphore(conc)

            async def chart(k: int) -> None:
                async with gate:
                    created = await client.post(
                        "/sessions", json={"order_id": f"nurse-{k % args.nurse_orders}"}
                    )
                    created.raise_for_status()
                    sid = created.json()["id"]
                    for event in completed_timeline(start_of_yesterday(), vitals=10):
                        t0 = time.perf_counter()
                        r = await client.post(f"/sessions/{sid}/events", json=event)
                        latencies.append(time.perf_counter() - t0)
                        if r.status_code != 201:
                            raise RuntimeError(f"event refused: {r.status_code} {r.text[:300]}")

            started = time.perf_counter()
            await asyncio.gather(*(chart(k) for k in range(n)))
            elapsed = time.perf_counter() - started
    finally:
        service.stop()
        remove_scratch(tmp)
    rate = len(latencies) / elapsed
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    say(
        f"  nurse events: {len(latencies)} in {elapsed:.1f} s at {conc} sessions at once -> "
        f"{rate:.0f} events/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )
    return {
        "sessions": n,
        "concurrency": conc,
        "events": len(latencies),
        "events_per_s": round(rate, 1),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "baseline_live": floor.as_dict(),
    }
