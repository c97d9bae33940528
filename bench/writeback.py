"""Benchmark 2 — write-back: completed sessions -> transaction Bundles -> HAPI.

1. Arrange: per session a Patient and an ocrelizumab order in HAPI, the same order pushed to
   the service, and a whole session (check-in to discharge, ~10 vitals sets) driven through
   the nurse API, with the delivery worker OFF (``INFUSION_DELIVERY_ENABLED=false``), so
   every write-back waits in the outbox.
2. Baseline (before): after an unmeasured warm-up of HAPI with 8 of the Bundles (under
   their own system), the same sessions mapped with ``session_to_bundle`` under a fresh
   ``identifier_system`` (so HAPI's conditional creates create, as the service's do) and
   POSTed straight to HAPI, 4 in flight (the worker's default concurrency).
3. Service: the service restarted on the same database with the worker ON
   (``INFUSION_DELIVERY_POLL_SECONDS=0.2``, concurrency default 4); the time from the first
   claimed delivery (or the first ``/health/live`` 200, if earlier) to the last ``delivered_at``.
4. Baseline (after): as 2 with another fresh system, to bracket drift in HAPI's speed.

Overhead = service wall time / mean baseline wall time - 1; also by CPU (HAPI + service CPU
in the delivery window / mean HAPI CPU of the baselines - 1), which other jobs disturb less.

    .venv/bin/python -m bench --only writeback [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._common import (
    FHIR_HEADERS,
    CpuMeter,
    Hapi,
    LoadResult,
    Service,
    bounded_gather,
    cpu_seconds,
    create_patient,
    machine_note,
    percentile,
    remove_scratch,
    run_load,
    say,
)
from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline, start_of_yesterday
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.store.db import make_engine, transaction
from services.infusion_bridge.store.infusion_sessions import get_infusion_session
from services.infusion_bridge.usecases.writeback import build_writeback

AIM_OVERHEAD_PCT = 10.0
WORKER_CONCURRENCY = 4  # INFUSION_DELIVERY_CONCURRENCY default
POLL_SECONDS = "0.2"
WARM_BUNDLES = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("writeback")
    group.add_argument("--sessions", type=int, help="completed sessions (40; quick 10)")
    group.add_argument("--vitals", type=int, default=10, help="vital-sign sets per session (10)")
    group.add_argument(
        "--arrange-concurrency", type=int, default=8, help="sessions driven at once (8)"
    )


class Arranger:
    """Creates the EHR side and drives one session per patient through the nurse API."""

    def __init__(self, ehr: httpx.AsyncClient, svc: httpx.AsyncClient, vitals: int) -> None:
        self.ehr = ehr
        self.svc = svc
        self.vitals = vitals
        self.start = start_of_yesterday()
        self.event_latencies: list[float] = []
        self.done = 0

    async def one(self) -> str:
        patient = await create_patient(self.ehr, "Chair")
        order_id = f"ocr-{uuid.uuid4().hex[:12]}"
        body = medication_request(id=order_id, subject={"reference": patient}, requester=None)
        (await self.ehr.put(f"MedicationRequest/{order_id}", json=body)).raise_for_status()
        current = await self.ehr.get(f"MedicationRequest/{order_id}")
        current.raise_for_status()
        pushed = await self.svc.put(
            f"/fhir/MedicationRequest/{order_id}", content=current.content, headers=FHIR_HEADERS
        )
        if pushed.status_code != 201:
            raise RuntimeError(f"order push failed: {pushed.status_code} {pushed.text[:300]}")
        created = await self.svc.post("/sessions", json={"order_id": order_id})
        if created.status_code != 201:
            raise RuntimeError(f"session create failed: {created.status_code} {created.text[:300]}")
        sid: str = created.json()["id"]
        for event in completed_timeline(self.start, vitals=self.vitals):
            t0 = time.perf_counter()
            r = await self.svc.post(f"/sessions/{sid}/events", json=event)
            self.event_latencies.append(time.perf_counter() - t0)
            if r.status_code != 201:
                raise RuntimeError(f"event {event['type']} failed: {r.status_code} {r.text[:300]}")
        self.done += 1
        if self.done % 10 == 0:
            say(f"  {self.done} sessions discharged")
        return sid


def build_bundles(db_path: Path, session_ids: list[str], system: str) -> list[bytes]:
    """The Bundles the service sends for these sessions (its own ``build_writeback``,
    i.e. ``writeback_bundle`` with the premed links), under ``system``."""
    engine = make_engine(f"sqlite:///{db_path}")
    catalog = load_catalog()
    out = []
    try:
        with transaction(engine) as db:
            for sid in session_ids:
                found = get_infusion_session(db, sid)
                assert found is not None, sid
                assert found.infusion is not None, sid
                bundle = build_writeback(
                    db, found.infusion, catalog=catalog, identifier_system=system
                )
                out.append(orjson.dumps(bundle))
    finally:
        engine.dispose()
    return out


def fresh_system() -> str:
    """A new identifier system as long as the service's default ``urn:infusion-bridge:resource``
    (28 characters), so the baseline's Bundles are the same size as the service's."""
    return f"urn:infusion-bridge:{uuid.uuid4().hex[:8]}"


def _statuses(entries: list[dict[str, Any]]) -> collections.Counter[str]:
    return collections.Counter(str(e.get("status", "?")).split(" ")[0] for e in entries)


async def baseline(
    name: str, ehr: httpx.AsyncClient, bundles: list[bytes], limit: float, pids: dict[str, Any]
) -> tuple[LoadResult, collections.Counter[str]]:
    tally: collections.Counter[str] = collections.Counter()

    def check(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        tally.update(_statuses([e.get("response") or {} for e in response.json().get("entry", [])]))
        return True

    result = await run_load(
        name,
        ehr,
        [("POST", "", b) for b in bundles],
        concurrency=WORKER_CONCURRENCY,
        time_limit=limit,
        check=check,
        cpu_pids=pids,
    )
    return result, tally


def _utc(text: str) -> float:
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


async def deliveries(svc: httpx.AsyncClient, status: str) -> list[dict[str, Any]]:
    r = await svc.get("/deliveries", params={"status": status, "limit": 500})
    r.raise_for_status()
    rows: list[dict[str, Any]] = r.json()
    return rows


class OutboxWatch(threading.Thread):
    """Polls the outbox table (read-only, every 20 ms) from before the service starts.

    Records when work first shows (a row leaves ``pending``) and when all ``n`` are
    delivered, with the CPU time of HAPI and the service at both moments (so the CPU figure
    covers exactly the delivery window). Reading the database costs the service nothing,
    unlike polling its API.
    """

    def __init__(
        self, db: Path, n: int, limit: float, pids: Callable[[], dict[str, int | None]]
    ) -> None:
        super().__init__(daemon=True)
        self.db, self.n, self.limit, self.pids = db, n, limit, pids
        self.cpu_first: dict[str, float | None] = {}
        self.cpu_done: dict[str, float | None] = {}
        self.counts: dict[str, int] = {}
        self.first_active: float | None = None  # time.time()
        self.done_at: float | None = None
        self.error: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                rows = con.execute("SELECT status, count(*) FROM outbox GROUP BY status")
                self.counts = {str(k): int(v) for k, v in rows}
                now = time.time()
                busy = self.counts.get("delivering", 0) + self.counts.get("delivered", 0)
                if self.first_active is None and busy:
                    self.first_active = now
                    self.cpu_first = {k: cpu_seconds(v) for k, v in self.pids().items()}
                if self.counts.get("delivered", 0) >= self.n:
                    self.done_at = now
                    self.cpu_done = {k: cpu_seconds(v) for k, v in self.pids().items()}
                    return
                if self.counts.get("dead"):
                    self.error = f"{self.counts['dead']} deliveries are dead (GET /deliveries)"
                    return
                time.sleep(0.02)
            self.error = self.error or f"not all {self.n} delivered within {self.limit} s"
        finally:
            con.close()


async def run(args: argparse.Namespace, hapi: Hapi) -> dict[str, Any]:
    n = args.sessions or (10 if args.quick else 40)
    if n > 500:
        raise SystemExit("--sessions: at most 500 (one /deliveries page)")
    vitals = args.vitals
    limit = args.time_limit
    say(
        f"== writeback: {n} sessions with {vitals} vitals sets each; worker concurrency "
        f"{WORKER_CONCURRENCY}, poll {POLL_SECONDS} s; machine: {machine_note()}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="infusion-bench-writeback-"))
    db = tmp / "bench.db"
    log = tmp / "service.log"
    results: dict[str, Any] = {"settings": {"sessions": n, "vitals": vitals}}
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)

    async with httpx.AsyncClient(
        base_url=hapi.base_url + "/", headers=FHIR_HEADERS, timeout=120, limits=limits
    ) as ehr:
        # 1. arrange, worker off
        off = Service(db, hapi.base_url, log, extra_env={"INFUSION_DELIVERY_ENABLED": "false"})
        say(f"starting the service (worker off) on :{off.port}, SQLite {db}")
        off.start()
        try:
            async with httpx.AsyncClient(
                base_url=off.base_url, headers=off.auth_headers, timeout=120, limits=limits
            ) as svc:
                arranger = Arranger(ehr, svc, vitals)
                say(f"arranging {n} sessions ({args.arrange_concurrency} at a time)")
                t0 = time.perf_counter()
                sids = await bounded_gather([arranger.one] * n, args.arrange_concurrency)
                took = time.perf_counter() - t0
                ev = arranger.event_latencies
                say(
                    f"  arranged in {took:.1f} s; nurse API events: {len(ev)} at concurrency "
                    f"{args.arrange_concurrency}, p50 {percentile(ev, 50) * 1000:.1f} ms, "
                    f"p99 {percentile(ev, 99) * 1000:.1f} ms"
                )
                results["nurse_events"] = {
                    "count": len(ev),
                    "p50_ms": round(percentile(ev, 50) * 1000, 2),
                    "p99_ms": round(percentile(ev, 99) * 1000, 2),
                    "concurrency": args.arrange_concurrency,
                }
                pending = await deliveries(svc, "pending")
                if len(pending) != n:
                    raise RuntimeError(f"expected {n} pending deliveries, found {len(pending)}")
        finally:
            off.stop()
        say(f"{n} deliveries pending in the outbox; service stopped")

        pids = {"hapi": hapi.pid}
        runs: dict[str, tuple[LoadResult, collections.Counter[str]]] = {}
        builds: dict[str, float] = {}

        async def run_baseline(label: str) -> None:
            system = fresh_system()
            t0 = time.perf_counter()
            bundles = build_bundles(db, sids, system)
            build_ms = (time.perf_counter() - t0) / len(sids) * 1000
            size = sum(map(len, bundles)) / len(bundles)
            entries = orjson.loads(bundles[0])["entry"]
            say(
                f"baseline {label}: {len(bundles)} Bundles ({len(entries)} entries, "
                f"{size / 1024:.0f} KiB each) under {system}, straight to HAPI, "
                f"{WORKER_CONCURRENCY} in flight (built in {build_ms:.1f} ms per session, "
                "not timed: the service builds its Bundle at discharge)"
            )
            result, tally = await baseline(f"baseline {label}", ehr, bundles, limit, pids)
            cpu = ", ".join(f"{k} {v:.1f} s" for k, v in result.cpu.items() if v is not None)
            say(result.line("sessions/s") + f"; entry statuses {dict(tally)}  [cpu: {cpu}]")
            runs[label] = (result, tally)
            builds[label] = round(build_ms, 2)

        # HAPI's first transactions of these resource types run slower (class loading, JIT):
        # warm it with a few of the Bundles under yet another system, not measured.
        warm = build_bundles(db, sids[:WARM_BUNDLES], fresh_system())
        warmed, _ = await baseline("warm-up (not measured)", ehr, warm, limit, pids)
        say(warmed.line("sessions/s"))
        await run_baseline("before")

        # 3. the service with the worker on, same database
        on = Service(
            db,
            hapi.base_url,
            log,
            extra_env={
                "INFUSION_DELIVERY_ENABLED": "true",
                "INFUSION_DELIVERY_POLL_SECONDS": POLL_SECONDS,
            },
        )
        say(f"starting the service (worker on) on :{on.port}")
        watch = OutboxWatch(db, n, limit, lambda: {"hapi": hapi.pid, "service": on.pid})
        watch.start()
        with CpuMeter({"hapi": hapi.pid}) as meter:
            try:
                on.start()
                startup_cpu = cpu_seconds(on.pid)
                say(f"  live {on.live_at - on.spawned_at:.2f} s after spawn; waiting for delivery")
                while watch.is_alive():
                    say(f"  {watch.counts.get('delivered', 0)}/{n} delivered ({watch.counts})")
                    await asyncio.to_thread(watch.join, 1.0)
                if watch.error or watch.done_at is None:
                    raise RuntimeError(f"write-back failed: {watch.error}")
                end_cpu = cpu_seconds(on.pid)
                async with httpx.AsyncClient(
                    base_url=on.base_url, headers=on.auth_headers, timeout=120
                ) as svc:
                    delivered = await deliveries(svc, "delivered")
            finally:
                watch.stop.set()
                on.stop()
        service_cpu = (
            None if startup_cpu is None or end_cpu is None else round(end_cpu - startup_cpu, 2)
        )
        times = [_utc(d["delivered_at"]) for d in delivered]
        # the worker starts in the app's lifespan, a moment before the port answers: count
        # from whichever came first, the first claimed row or the first /health/live 200
        began = min(on.live_at, watch.first_active or on.live_at)
        wall = max(times) - began
        retries = sum(1 for d in delivered if d["attempts"] > 1)
        svc_tally: collections.Counter[str] = collections.Counter()
        for d in delivered:
            svc_tally.update(_statuses((d.get("response") or {}).get("entries") or []))
        service_fig: dict[str, Any] = {
            "wall_s": round(wall, 3),
            "sessions_per_s": round(n / wall, 2),
            "wall_from_live_s": round(max(times) - on.live_at, 3),
            "first_claim_after_live_s": round((watch.first_active or on.live_at) - on.live_at, 3),
            "first_delivered_after_start_s": round(min(times) - began, 3),
            "live_after_spawn_s": round(on.live_at - on.spawned_at, 3),
            "retries": retries,
            "entry_statuses": dict(svc_tally),
            "cpu_s": {
                "service_after_live": service_cpu,
                "service_startup": startup_cpu,
                **{k: (None if v is None else round(v, 2)) for k, v in meter.used.items()},
            },
        }
        say(
            f"service: {n} sessions delivered {wall:.2f} s after the worker started (first claim "
            f"{(watch.first_active or on.live_at) - on.live_at:+.2f} s from /health/live) -> "
            f"{n / wall:.2f} sessions/s (first delivered at +{min(times) - began:.2f} s, retries "
            f"{retries}); entry statuses {dict(svc_tally)}  "
            f"[cpu: service {service_cpu} s after live, "
            f"{meter.describe()}]"
        )

        await run_baseline("after")

    base_walls = [r.elapsed for r, _ in runs.values()]
    base_wall = sum(base_walls) / len(base_walls)
    overhead = (wall / base_wall - 1) * 100
    # A second reading that other jobs on the machine disturb less: CPU seconds. The service
    # path costs HAPI's CPU for the Bundles plus the service's own; the baseline only HAPI's.
    base_cpu = [r.cpu.get("hapi") for r, _ in runs.values()]
    window = {
        k: (None if a is None or b is None else b - a)
        for k, a, b in (
            (k, watch.cpu_first.get(k), watch.cpu_done.get(k)) for k in ("hapi", "service")
        )
    }
    hapi_cpu, window_service_cpu = window["hapi"], window["service"]
    cpu_overhead = None
    if None not in base_cpu and hapi_cpu is not None and window_service_cpu is not None:
        mean_cpu = sum(c for c in base_cpu if c is not None) / len(base_cpu)
        cpu_overhead = ((hapi_cpu + window_service_cpu) / mean_cpu - 1) * 100
    service_fig["cpu_s"]["delivery_window"] = {
        k: (None if v is None else round(v, 2)) for k, v in window.items()
    }
    results["service"] = service_fig
    results["baseline"] = {
        label: {**r.as_dict(), "entry_statuses": dict(t), "build_ms_per_session": builds[label]}
        for label, (r, t) in runs.items()
    }
    same_work = all(t == svc_tally for _, t in runs.values())
    results["verdict"] = {
        "overhead_pct": round(overhead, 1),
        "overhead_met": overhead < AIM_OVERHEAD_PCT,
        "same_entry_statuses": same_work,
        "baseline_mean_wall_s": round(base_wall, 3),
        "cpu_overhead_pct": None if cpu_overhead is None else round(cpu_overhead, 1),
    }
    results["machine_after"] = machine_note()
    say("-- writeback summary")
    say(
        f"  aim: write-back through the service costs < {AIM_OVERHEAD_PCT:.0f}% more than POSTing "
        "the same Bundles straight to HAPI"
    )
    say(
        f"  service {wall:.2f} s ({n / wall:.2f} sessions/s) vs baseline "
        + ", ".join(
            f"{label} {r.elapsed:.2f} s ({r.rate:.2f} sessions/s)" for label, (r, _) in runs.items()
        )
        + f" -> overhead {overhead:+.1f}% [{'MET' if overhead < AIM_OVERHEAD_PCT else 'NOT MET'}]"
    )
    if cpu_overhead is not None:
        say(
            f"  by CPU (first claim .. last delivered): HAPI {hapi_cpu:.1f} s + service "
            f"{window_service_cpu:.2f} s vs HAPI "
            + " / ".join(f"{c:.1f}" for c in base_cpu if c is not None)
            + f" s for the baselines -> {cpu_overhead:+.1f}%"
        )
    if not same_work:
        say(
            "  WARNING: entry statuses differ between the service and the baseline "
            f"(not the same work): service {dict(svc_tally)}, baseline "
            + ", ".join(f"{label} {dict(t)}" for label, (_, t) in runs.items())
        )
    remove_scratch(tmp)
    return results
