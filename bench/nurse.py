"""The nurse API under a busy infusion center: many sessions charted at once.

Arrange: ``--nurse-orders`` (8) active orders in a scratch store. Measure: ``--nurse-sessions``
(40) complete sessions (check-in to discharge, 10 vital-sign sets: 17 events each) driven
through ``POST /sessions`` and ``POST /sessions/{id}/events``, ``--nurse-concurrency`` (8)
sessions at a time, each posting its events in order. The worker is off, so this is the
charting cost alone (discharge includes building and storing the FHIR record). Baseline in
the same run: ``GET /health/live`` at the same concurrency (the HTTP floor of this process).

Then the same with a native load generator (the Python client above costs the two cores
about as much as the service): ``--nurse-concurrency`` more sessions are opened and taken
to infusion start, and one ``ab -k -c 1`` per session (all at once, each a nurse) posts
``--nurse-vitals`` (200) sets of vital signs to its session, so that the last event is
recorded on a timeline of ~200 events. Baseline in the same run: as many ``ab -c 1`` on
``GET /health/live`` at once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

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
from bench.load_generators import command, figures
from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline, start_of_yesterday

NEEDS_HAPI = False
FHIR = {"Content-Type": "application/fhir+json"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("nurse")
    group.add_argument("--nurse-sessions", type=int, help="sessions charted (40; quick 16)")
    group.add_argument("--nurse-concurrency", type=int, default=8, help="sessions at once (8)")
    group.add_argument("--nurse-orders", type=int, default=8, help="orders they are for (8)")
    group.add_argument("--nurse-vitals", type=int, help="vitals per nurse with ab (200; quick 50)")


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
            vitals = args.nurse_vitals or (50 if args.quick else 200)
            native = await _native(client, service, args.nurse_orders, conc, vitals, tmp)
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
        "native": native,
    }


AIM_P99_MS = 50.0


async def _native(
    client: httpx.AsyncClient, service: Service, orders: int, nurses: int, vitals: int, tmp: Path
) -> dict[str, Any]:
    """``nurses`` sessions at infusion start, one ``ab -c 1`` each posting vital signs."""
    timeline = completed_timeline(start_of_yesterday(), vitals=1)
    before = timeline[: next(i for i, e in enumerate(timeline) if e["type"] == "vitals")]
    body = tmp / "vitals.json"
    body.write_bytes(orjson.dumps(timeline[len(before)]))
    urls = []
    for k in range(nurses):
        created = await client.post("/sessions", json={"order_id": f"nurse-{k % orders}"})
        created.raise_for_status()
        sid = created.json()["id"]
        for event in before:
            (await client.post(f"/sessions/{sid}/events", json=event)).raise_for_status()
        urls.append(f"{service.base_url}/sessions/{sid}/events")
    bearer = service.auth_headers["Authorization"].removeprefix("Bearer ")
    live = await asyncio.to_thread(
        _abs, [command("ab", f"{service.base_url}/health/live", vitals, 1, bearer=bearer)] * nurses
    )
    charted = await asyncio.to_thread(
        _abs, [command("ab", url, vitals, 1, body=body, bearer=bearer) for url in urls]
    )
    result = {"nurses": nurses, "vitals_each": vitals, "baseline_live": live, "events": charted}
    say(f"  native, {nurses} x ab -k -c 1 at once:")
    for name, runs in (
        ("baseline GET /health/live", live),
        ("vitals POST /sessions/{id}/events", charted),
    ):
        say(
            f"    {name:34s} {runs['rate']:7.1f} req/s in all, p50 {runs['p50_ms']} ms (median "
            f"of {nurses}), p99 {runs['p99_ms']} ms (worst of {nurses}), "
            f"max {runs['max_ms']} ms [{runs['bad']} failed/non-2xx]"
        )
    met = charted["p99_ms"] < AIM_P99_MS and charted["bad"] == 0
    verdict = "MET" if met else "NOT MET"
    say(f"    nurse p99 < {AIM_P99_MS:.0f} ms with {nurses} charting at once: {verdict}")
    result["aim_met"] = met
    return result


def _abs(commands: list[list[str]]) -> dict[str, Any]:
    """Run the ``ab`` commands at once; their figures together (rates added, worst p99)."""
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
        for c in commands
    ]
    outs = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"ab failed: {err.strip()[:300]}")
        outs.append(figures("ab", args, out))
    return {
        "command": outs[0]["command"],
        "runs": len(outs),
        "rate": round(sum(o["rate"] for o in outs), 1),
        "p50_ms": statistics.median(o["p50_ms"] for o in outs),
        "p99_ms": max(o["p99_ms"] for o in outs),
        "max_ms": max(o["p100_ms"] for o in outs),
        "bad": sum(o["failed"] + o["non_2xx"] for o in outs),
    }
