"""Benchmark 1 — order intake: the service's FHIR order endpoints against HAPI's own creates.

Phases (all in one run, on the same machine, against the same HAPI sandbox):

1. mapping alone: ``order_from_fhir`` per order next to ``orjson.loads`` / ``json.loads``
   of the same bytes (µs/op, best and median of several passes over the orders);
2. single creates: ``POST /fhir/MedicationRequest`` to the service vs ``POST
   {hapi}/MedicationRequest`` (same bodies, same concurrency, same count);
3. 100-entry ``batch`` Bundles: ``POST /fhir`` to the service vs ``POST {hapi}``.

Every order is distinct (own identifier) and points at a Patient created in HAPI first
(HAPI enforces referential integrity; ``requester`` is dropped). The service does no EHR
call for these orders (coded medication, nothing to resolve).

    .venv/bin/python -m bench --only intake [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._common import (
    FHIR_HEADERS,
    Hapi,
    LoadResult,
    Service,
    create_patient,
    fmt_ratio,
    machine_note,
    remove_scratch,
    run_load,
    say,
)
from fhir_mappings.medication_request import order_from_fhir
from harness.fhir_payloads import medication_request
from services.infusion_bridge.domain.catalog import load_catalog

AIM_RATIO = 3.0
AIM_P99_MS = 50.0
AIM_MAPPING_US = 1000.0
PATIENTS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("intake")
    group.add_argument(
        "--intake-count", type=int, help="single creates per target (2000; quick 300)"
    )
    group.add_argument("--intake-concurrency", type=int, default=8, help="clients in flight (8)")
    group.add_argument(
        "--bundles", type=int, help="100-entry batch Bundles per target (30; quick 8)"
    )
    group.add_argument("--bundle-size", type=int, default=100, help="entries per Bundle (100)")
    group.add_argument(
        "--bundle-concurrency", type=int, default=4, help="Bundles in flight at once (4)"
    )
    group.add_argument(
        "--rounds", type=int, default=2, help="alternate service/HAPI this many times (2)"
    )
    group.add_argument("--mapping-count", type=int, help="orders for the mapping timing (2000)")


def _bodies(patients: Sequence[str], n: int) -> list[dict[str, Any]]:
    return [
        medication_request(subject={"reference": patients[i % len(patients)]}, requester=None)
        for i in range(n)
    ]


def _batch(orders: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"resource": o, "request": {"method": "POST", "url": "MedicationRequest"}}
                for o in orders
            ],
        }
    )


def _created(response: httpx.Response) -> bool:
    return response.status_code == 201


def _batch_ok(size: int) -> Callable[[httpx.Response], bool]:
    def check(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        entries = response.json().get("entry") or []
        return len(entries) == size and all(
            str(e.get("response", {}).get("status", "")).startswith("201") for e in entries
        )

    return check


def _per_op_us(fn: Callable[[Any], Any], items: Sequence[Any], passes: int) -> tuple[float, float]:
    """(best, median) µs per call over ``passes`` passes through ``items``."""
    times = []
    for _ in range(passes):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        times.append((time.perf_counter() - t0) / len(items) * 1e6)
    return min(times), statistics.median(times)


def mapping_figures(bodies: Sequence[dict[str, Any]], passes: int = 5) -> dict[str, Any]:
    catalog = load_catalog()
    # the service gives each order its id before mapping (prepare_order); do the same here
    raw = [orjson.dumps({**b, "id": uuid.uuid4().hex}) for b in bodies]
    parsed = [orjson.loads(r) for r in raw]
    for d in parsed[:50]:  # warm the pydantic models
        order_from_fhir(d, catalog)
    out: dict[str, Any] = {"orders": len(raw), "mean_bytes": sum(map(len, raw)) / len(raw)}
    for name, fn, items in (
        ("orjson.loads", orjson.loads, raw),
        ("json.loads", json.loads, raw),
        ("order_from_fhir", lambda d: order_from_fhir(d, catalog), parsed),
        (
            "orjson.loads + order_from_fhir",
            lambda r: order_from_fhir(orjson.loads(r), catalog),
            raw,
        ),
    ):
        best, median = _per_op_us(fn, items, passes)
        out[name] = {"best_us": round(best, 2), "median_us": round(median, 2)}
        say(
            f"  {name:32s} {best:9.1f} µs/op best, {median:9.1f} µs/op median "
            f"({len(items)} x {passes})"
        )
    return out


async def run(args: argparse.Namespace, hapi: Hapi) -> dict[str, Any]:
    quick = args.quick
    count = args.intake_count or (300 if quick else 2000)
    conc = args.intake_concurrency
    n_bundles = args.bundles or (8 if quick else 30)
    size = args.bundle_size
    bconc = args.bundle_concurrency
    n_mapping = args.mapping_count or 2000
    rounds = max(1, args.rounds)
    limit = args.time_limit
    say(
        f"== intake: {count} single creates at concurrency {conc}, {n_bundles} x {size}-entry "
        f"batch Bundles at concurrency {bconc}; machine: {machine_note()}"
    )

    tmp = Path(tempfile.mkdtemp(prefix="infusion-bench-intake-"))
    limits = httpx.Limits(
        max_connections=max(conc, bconc), max_keepalive_connections=max(conc, bconc)
    )
    results: dict[str, Any] = {
        "settings": {
            "count": count,
            "concurrency": conc,
            "bundles": n_bundles,
            "bundle_size": size,
            "bundle_concurrency": bconc,
        }
    }
    async with httpx.AsyncClient(
        base_url=hapi.base_url + "/", headers=FHIR_HEADERS, timeout=120, limits=limits
    ) as ehr:
        say(f"creating {PATIENTS} patients in HAPI")
        patients = [await create_patient(ehr) for _ in range(PATIENTS)]

        say(f"mapping alone, {n_mapping} orders:")
        results["mapping"] = mapping_figures(_bodies(patients, n_mapping))

        warm = max(conc * 10, 80)
        single = [orjson.dumps(b) for b in _bodies(patients, count + 2 * warm)]
        warm_svc, warm_hapi = single[count : count + warm], single[count + warm :]
        bundles = [_batch(_bodies(patients, size)) for _ in range(n_bundles + 2)]
        say(
            f"prepared {len(single)} orders ({len(single[0])} bytes each) and "
            f"{len(bundles)} Bundles "
            f"({len(bundles[0]) / 1024:.0f} KiB each)"
        )

        service = Service(
            db_path=tmp / "bench.db",
            ehr_base_url=hapi.base_url,
            log_path=tmp / "service.log",
            extra_env={"INFUSION_DELIVERY_ENABLED": "false"},
        )
        say(f"starting the service on :{service.port} (SQLite {service.db_path})")
        service.start()
        pids = {"service": service.pid, "hapi": hapi.pid}
        try:
            async with httpx.AsyncClient(
                base_url=service.base_url,
                headers={**FHIR_HEADERS, **service.auth_headers},
                timeout=120,
                limits=limits,
            ) as svc:
                say(f"warm-up: {warm} creates each, not measured")
                for name, client, url, bodies in (
                    ("warm-up service", svc, "/fhir/MedicationRequest", warm_svc),
                    ("warm-up HAPI", ehr, "MedicationRequest", warm_hapi),
                ):
                    r = await run_load(
                        name,
                        client,
                        [("POST", url, b) for b in bodies],
                        concurrency=conc,
                        time_limit=limit,
                        check=_created,
                    )
                    say(r.line())
                warm_bundle = [
                    ("warm-up service Bundle", svc, "/fhir", bundles[0]),
                    ("warm-up HAPI Bundle", ehr, "", bundles[1]),
                ]
                for name, client, url, body in warm_bundle:
                    r = await run_load(
                        name,
                        client,
                        [("POST", url, body)],
                        concurrency=1,
                        time_limit=limit,
                        check=_batch_ok(size),
                    )
                    say(r.line())

                say(
                    f"single creates, {count} each at concurrency {conc}, in {rounds} "
                    "alternating rounds:"
                )
                s1, h1 = await _alternate(
                    rounds,
                    ("service POST /fhir/MedicationRequest", svc, "/fhir/MedicationRequest"),
                    ("HAPI POST MedicationRequest", ehr, "MedicationRequest"),
                    single[:count],
                    concurrency=conc,
                    limit=limit,
                    check=_created,
                    pids=pids,
                    unit="req/s",
                )
                say(
                    f"batch Bundles, {n_bundles} x {size} entries each at concurrency {bconc}, "
                    f"in {rounds} alternating rounds:"
                )
                s2, h2 = await _alternate(
                    rounds,
                    ("service POST /fhir batch", svc, "/fhir"),
                    ("HAPI POST batch", ehr, ""),
                    bundles[2:],
                    concurrency=bconc,
                    limit=limit,
                    check=_batch_ok(size),
                    pids=pids,
                    unit="bundles/s",
                )
        finally:
            service.stop()

    results.update(
        single_service=s1.as_dict(),
        single_hapi=h1.as_dict(),
        bundle_service=s2.as_dict(),
        bundle_hapi=h2.as_dict(),
    )
    results["verdict"] = _verdict(results, s1, h1, s2, h2, size)
    results["machine_after"] = machine_note()
    remove_scratch(tmp)
    return results


async def _alternate(
    rounds: int,
    service: tuple[str, httpx.AsyncClient, str],
    hapi: tuple[str, httpx.AsyncClient, str],
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    limit: float,
    check: Callable[[httpx.Response], bool],
    pids: dict[str, int | None],
    unit: str,
) -> tuple[LoadResult, LoadResult]:
    """The same bodies to both targets (separate stores), in rounds: S H, H S, S H ...

    Alternating spreads drift in the machine's load (other jobs) over both targets.
    """
    parts: dict[str, list[LoadResult]] = {service[0]: [], hapi[0]: []}
    chunks = [bodies[i::rounds] for i in range(rounds)]
    for i, chunk in enumerate(chunks):
        order = (service, hapi) if i % 2 == 0 else (hapi, service)
        for name, client, url in order:
            r = await run_load(
                f"{name} (round {i + 1})",
                client,
                [("POST", url, b) for b in chunk],
                concurrency=concurrency,
                time_limit=limit / rounds,
                check=check,
                cpu_pids=pids,
            )
            say(r.line(unit) + f"  [cpu: {_cpu(r)}]")
            parts[name].append(r)
    merged = [LoadResult.merge(name, rs) for name, rs in parts.items()]
    for r in merged:
        spread = ", ".join(f"{p.rate:.1f}" for p in parts[r.name])
        say(r.line(unit) + f"  [rounds: {spread} {unit}; cpu: {_cpu(r)}]")
    return merged[0], merged[1]


def _cpu(r: LoadResult) -> str:
    return ", ".join(f"{k} {'?' if v is None else f'{v:.1f}'} s" for k, v in r.cpu.items())


def _verdict(
    results: dict[str, Any],
    s1: LoadResult,
    h1: LoadResult,
    s2: LoadResult,
    h2: LoadResult,
    size: int,
) -> dict[str, Any]:
    ratio = s1.rate / h1.rate if h1.rate else float("inf")
    bundle_ratio = s2.rate / h2.rate if h2.rate else float("inf")
    mapping_us = results["mapping"]["order_from_fhir"]["best_us"]
    verdict = {
        "single_ratio": round(ratio, 2),
        "bundle_ratio": round(bundle_ratio, 2),
        "ratio_met": ratio >= AIM_RATIO,
        "p99_met": s1.p99_ms < AIM_P99_MS,
        "mapping_met": mapping_us < AIM_MAPPING_US,
        "clean": not (s1.errors or h1.errors or s2.errors or h2.errors),
    }
    say("-- intake summary")
    say(
        f"  aim: service takes orders >= {AIM_RATIO:.0f}x faster than HAPI creates them, p99 < "
        f"{AIM_P99_MS:.0f} ms at that rate; mapping one order well under "
        f"{AIM_MAPPING_US / 1000:.0f} ms"
    )
    say(
        f"  single: service {s1.rate:.0f} req/s (p50 {s1.p50_ms:.1f} / p99 {s1.p99_ms:.1f} ms) vs "
        f"HAPI {h1.rate:.0f} req/s (p50 {h1.p50_ms:.1f} / p99 {h1.p99_ms:.1f} ms) -> ratio "
        f"{fmt_ratio(ratio)} [{'MET' if verdict['ratio_met'] else 'NOT MET'}], p99 "
        f"[{'MET' if verdict['p99_met'] else 'NOT MET'}]"
    )
    say(
        f"  batch:  service {s2.rate:.2f} bundles/s = {s2.rate * size:.0f} orders/s (p99 "
        f"{s2.p99_ms:.0f} ms) vs HAPI {h2.rate:.2f} bundles/s = {h2.rate * size:.0f} orders/s "
        f"(p99 {h2.p99_ms:.0f} ms) -> ratio {fmt_ratio(bundle_ratio)}"
    )
    say(
        f"  mapping: order_from_fhir {mapping_us:.0f} µs/op "
        f"[{'MET' if verdict['mapping_met'] else 'NOT MET'}]"
        f", orjson.loads {results['mapping']['orjson.loads']['best_us']:.1f} µs/op, json.loads "
        f"{results['mapping']['json.loads']['best_us']:.1f} µs/op"
    )
    if not verdict["clean"]:
        say("  WARNING: some requests failed; see the error lines above")
    return verdict
