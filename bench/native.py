"""Benchmark — intake under a native load generator: the service against its floor, and
PostgreSQL with two service processes against one.

A native load generator (``bench.load_generators``) sends the same order again and again,
``--native-concurrency`` (32) in flight, so it costs little CPU next to the server (a Python
client would eat the core it measures). The SQLite part runs with both generators, rounds
interleaved (which one goes first alternates): ``hey`` (HTTP/1.1, each worker keeps its
connection, as an EHR's client pool does) and ``ab`` (HTTP/1.0: uvicorn closes each
connection after its answer, so every request also pays a TCP connection, the floor's and the
service's alike). Each is judged on its own figures, and only on rounds where every request
answered 2xx; ``--native-generator`` picks one. The PostgreSQL part runs under ``ab`` only
(:data:`PG_GENERATOR` says why).

1. SQLite, one process each, alternating rounds F S F S ...: the floor
   (``bench/floor.py``: check the bearer token, validate with fhir.resources R4B from the
   bytes, insert into SQLite WAL, 201) and the service's ``POST /fhir/MedicationRequest``
   (token, scopes and roles, validate, map, rules, version, identifiers, keep the
   original, audit record, 201 with the stored resource).
2. PostgreSQL (``harness.postgres``: Debian's server on loopback, fsync off), alternating
   rounds: ``serve --workers 1`` and ``serve --workers 2`` on fresh schemas, under ``ab``.

Every target signs in as in production: one local issuer (``bench._common.bench_issuer``,
its JWKS on loopback) signs a token that the generator sends with every request.

    .venv/bin/python -m bench --only native
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from bench._common import (
    Hapi,
    bench_issuer,
    fmt_ratio,
    free_port,
    machine_note,
    remove_scratch,
    say,
)
from bench.load_generators import GENERATORS, load, require
from harness.fhir_payloads import medication_request
from harness.postgres import postgres_server
from harness.service_process import ROOT, service_env, wait_live
from services.infusion_bridge.store.db import make_engine

NEEDS_HAPI = False
AIM_FLOOR_RATIO = 0.7
AIM_P99_MS = 50.0
AIM_SCALE = 1.6
PATH = "/fhir/MedicationRequest"
PG_GENERATOR = "ab"
"""The PostgreSQL part's generator. Two processes share one listening socket, and a kept-alive
connection stays with the process that accepted it: under ``hey`` two processes served
1.00-1.94x one, by how its 32 connections happened to be spread. ``ab`` opens a connection
a request, so the kernel spreads the requests themselves."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("native")
    group.add_argument(
        "--native-count",
        type=int,
        help="POSTs per round and target (3000; hey sends the largest multiple of -c below it)",
    )
    group.add_argument("--native-concurrency", type=int, default=32, help="requests in flight (32)")
    group.add_argument(
        "--native-generator",
        choices=(*GENERATORS, "both"),
        default="both",
        help="load generator: hey (HTTP/1.1 keep-alive), ab (a connection a request) or both",
    )
    group.add_argument("--native-rounds", type=int, default=2, help="alternating rounds (2)")


def sign_in_env() -> dict[str, str]:
    """What makes a service process trust the benchmark's issuer."""
    return {"INFUSION_AUTH_ISSUER": bench_issuer().issuer, "INFUSION_AUTH_DISABLED": "false"}


@contextmanager
def process(args: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    with log.open("ab") as sink:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        wait_live(proc, url, log, 60)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def floor(tmp: Path) -> Any:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.floor", "--port", str(port), "--db", str(tmp / "floor.db")]
    cmd += ["--issuer", bench_issuer().issuer]
    return process(cmd, service_env("", port), port, tmp / "floor.log")


def service(tmp: Path, database_url: str, workers: int, name: str) -> Any:
    port = free_port()
    cmd = [sys.executable, "-m", "services.infusion_bridge.cli", "serve", "--workers", str(workers)]
    env = service_env(database_url, port, sign_in_env())
    return process(cmd, env, port, tmp / f"{name}.log")


def _line(name: str, f: dict[str, Any]) -> str:
    bad = f["failed"] + f["non_2xx"]
    return f"  {name:28s} {f['rate']:8.1f} req/s  p50 {f['p50_ms']} ms  p99 {f['p99_ms']} ms" + (
        f"  [{bad} failed/non-2xx]" if bad else ""
    )


def _reset(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


async def run(args: argparse.Namespace, hapi: Hapi) -> dict[str, Any]:
    generators = GENERATORS if args.native_generator == "both" else (args.native_generator,)
    require((*generators, PG_GENERATOR))
    count = args.native_count or (500 if args.quick else 3000)
    conc, rounds = args.native_concurrency, max(1, args.native_rounds)
    tmp = Path(tempfile.mkdtemp(prefix="infusion-bench-native-"))
    body = tmp / "order.json"
    body.write_bytes(orjson.dumps(medication_request()))
    warm = max(200, count // 10)
    say(
        f"== native: {' and '.join(generators)}, -c {conc}, {count} POSTs of one "
        f"{body.stat().st_size}-byte order per round, {rounds} rounds; machine: {machine_note()}"
    )
    results: dict[str, Any] = {"count": count, "concurrency": conc, "postgres": []}
    for generator in generators:
        results[generator] = {"rounds": []}

    say("SQLite, one process each: floor vs service, alternating")
    with floor(tmp) as floor_url, service(tmp, f"sqlite:///{tmp / 'svc.db'}", 1, "svc") as svc:
        targets = {"floor": floor_url + PATH, "service": svc + PATH}
        for generator in generators:
            for url in targets.values():
                load(generator, url, body, warm, conc)
        for i in range(rounds):
            order = list(targets) if i % 2 == 0 else list(reversed(targets))
            for generator in generators if i % 2 == 0 else generators[::-1]:
                figures = {n: load(generator, targets[n], body, count, conc) for n in order}
                for name in order:
                    say(_line(f"{generator}: {name} (round {i + 1})", figures[name]))
                results[generator]["rounds"].append(figures)

    say(
        f"PostgreSQL: serve --workers 1 vs --workers 2, alternating, fresh schema each "
        f"({PG_GENERATOR}: each request on a new connection, spread over the processes)"
    )
    with postgres_server() as pg:
        for i in range(rounds):
            for workers in (1, 2) if i % 2 == 0 else (2, 1):
                _reset(pg)
                with service(tmp, pg, workers, f"pg-{workers}") as url:
                    load(PG_GENERATOR, url + PATH, body, warm, conc)
                    f = load(PG_GENERATOR, url + PATH, body, count, conc)
                say(_line(f"postgres {workers} process(es) (round {i + 1})", f))
                results["postgres"].append({"workers": workers, **f})

    say("-- native summary")
    for generator in generators:
        results[generator]["verdict"] = _sqlite_verdict(generator, results[generator]["rounds"])
    results["postgres_verdict"] = _postgres_verdict(results["postgres"])
    results["machine_after"] = machine_note()
    remove_scratch(tmp)
    return results


def _sqlite_verdict(generator: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["service"]["rate"] / r["floor"]["rate"] for r in rounds]
    p99s = [r["service"]["p99_ms"] for r in rounds]
    clean = all(_clean(f) for r in rounds for f in r.values())
    verdict: dict[str, Any] = {  # a round with failures says nothing about speed: not met
        "floor_ratios": [round(r, 2) for r in ratios],
        "service_p99_ms": p99s,
        "floor_ratio_met": clean and min(ratios) >= AIM_FLOOR_RATIO,
        "p99_met": clean and all(p is not None and p < AIM_P99_MS for p in p99s),
        "clean": clean,
    }
    say(
        f"  {generator}: service / floor per round: {', '.join(fmt_ratio(r) for r in ratios)} "
        f"(aim >= {AIM_FLOOR_RATIO}) [{_met(verdict['floor_ratio_met'])}]"
    )
    say(
        f"  {generator}: service p99 per round: {p99s} ms (aim < {AIM_P99_MS:.0f}) "
        f"[{_met(verdict['p99_met'])}]"
    )
    if not verdict["clean"]:
        say(f"  WARNING ({generator}): some requests failed or were not 2xx")
    return verdict


def _postgres_verdict(runs: list[dict[str, Any]]) -> dict[str, Any]:
    one = [p["rate"] for p in runs if p["workers"] == 1]
    two = [p["rate"] for p in runs if p["workers"] == 2]
    scale = [b / a for a, b in zip(one, two, strict=True)]
    clean = all(_clean(p) for p in runs)
    verdict: dict[str, Any] = {
        "postgres_scale": [round(s, 2) for s in scale],
        "scale_met": clean and min(scale) >= AIM_SCALE,
        "clean": clean,
    }
    say(
        f"  {PG_GENERATOR}: PostgreSQL 2 processes / 1 per round: "
        f"{', '.join(fmt_ratio(s) for s in scale)} (aim >= {AIM_SCALE}) "
        f"[{_met(verdict['scale_met'])}]"
    )
    if not verdict["clean"]:
        say("  WARNING (PostgreSQL): some requests failed or were not 2xx")
    return verdict


def _clean(figures: dict[str, Any]) -> bool:
    return bool(figures["failed"] + figures["non_2xx"] == 0)


def _met(met: bool) -> str:
    return "MET" if met else "NOT MET"
