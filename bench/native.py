"""Benchmark — intake under a native load generator: the service against its floor, and
PostgreSQL with two service processes against one.

``ab`` (Apache Bench, Debian's ``apache2-utils``) sends the same order again and again,
keep-alive, ``--native-concurrency`` (32) in flight, so the load generator costs little
CPU next to the server (a Python client would eat the core it measures).

1. SQLite, one process each, alternating rounds F S F S ...: the floor
   (``bench/floor.py``: check the bearer token, validate with fhir.resources R4B from the
   bytes, insert into SQLite WAL, 201) and the service's ``POST /fhir/MedicationRequest``
   (token, scopes and roles, validate, map, rules, version, identifiers, keep the
   original, audit record, 201 with the stored resource).
2. PostgreSQL (``harness.postgres``: Debian's server on loopback, fsync off), alternating
   rounds: ``serve --workers 1`` and ``serve --workers 2`` on fresh schemas.

Every target signs in as in production: one local issuer (``bench._common.bench_issuer``,
its JWKS on loopback) signs a token that ``ab`` sends with every request.

    .venv/bin/python -m bench --only native
"""

from __future__ import annotations

import argparse
import re
import shutil
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
from harness.fhir_payloads import medication_request
from harness.postgres import postgres_server
from harness.service_process import ROOT, service_env, wait_live
from services.infusion_bridge.store.db import make_engine

NEEDS_HAPI = False
AIM_FLOOR_RATIO = 0.7
AIM_P99_MS = 50.0
AIM_SCALE = 1.6
PATH = "/fhir/MedicationRequest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("native")
    group.add_argument("--native-count", type=int, help="POSTs per round and target (3000)")
    group.add_argument("--native-concurrency", type=int, default=32, help="ab -c (32)")
    group.add_argument("--native-rounds", type=int, default=2, help="alternating rounds (2)")


def token() -> str:
    """A token with every role and scope, good for an hour (the benchmark's issuer)."""
    return bench_issuer().token(expires_in=3600)


def sign_in_env() -> dict[str, str]:
    """What makes a service process trust the benchmark's issuer."""
    return {"INFUSION_AUTH_ISSUER": bench_issuer().issuer, "INFUSION_AUTH_DISABLED": "false"}


def ab_command(
    url: str, count: int, concurrency: int, *, body: Path | None = None, bearer: str | None = None
) -> list[str]:
    """``ab -k`` sending ``count`` requests (POSTs of ``body``, else GETs), signed in."""
    command = ["ab", "-k", "-q", "-c", str(concurrency), "-n", str(count)]
    if body is not None:
        command += ["-p", str(body), "-T", "application/fhir+json"]
    return [*command, "-H", f"Authorization: Bearer {bearer or token()}", url]


def ab_figures(command: list[str], out: str) -> dict[str, Any]:
    """Throughput, latency percentiles and failures from ``ab``'s report."""
    shown = [
        "Authorization: Bearer <token>" if c.startswith("Authorization:") else c for c in command
    ]
    figures: dict[str, Any] = {"command": " ".join(shown)}
    figures["rate"] = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # ab counts an answer whose length differs from the first one's as failed ("Length"):
    # only connection, receive and exception failures are errors here
    total = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", out)
    figures["failed"] = sum(map(int, kinds.groups())) if kinds else total
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    figures["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    for pct in ("50", "99", "100"):
        found = re.search(rf"^\s+{pct}%\s+(\d+)", out, re.MULTILINE)
        figures[f"p{pct}_ms"] = int(found.group(1)) if found else None
    return figures


def ab(url: str, body: Path, count: int, concurrency: int) -> dict[str, Any]:
    """One ``ab -k`` run of POSTs, signed in; its figures (:func:`ab_figures`)."""
    command = ab_command(url, count, concurrency, body=body)
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603
    return ab_figures(command, out)


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
    if shutil.which("ab") is None:
        raise RuntimeError("ab is missing: run `make system-deps` (Debian's apache2-utils)")
    count = args.native_count or (500 if args.quick else 3000)
    conc, rounds = args.native_concurrency, max(1, args.native_rounds)
    tmp = Path(tempfile.mkdtemp(prefix="infusion-bench-native-"))
    body = tmp / "order.json"
    body.write_bytes(orjson.dumps(medication_request()))
    warm = max(200, count // 10)
    say(
        f"== native: ab -k -c {conc}, {count} POSTs of one {body.stat().st_size}-byte order "
        f"per round, {rounds} rounds; machine: {machine_note()}"
    )
    results: dict[str, Any] = {"count": count, "concurrency": conc, "rounds": []}

    say("SQLite, one process each: floor vs service, alternating")
    with floor(tmp) as floor_url, service(tmp, f"sqlite:///{tmp / 'svc.db'}", 1, "svc") as svc:
        targets = {"floor": floor_url + PATH, "service": svc + PATH}
        for url in targets.values():
            ab(url, body, warm, conc)
        for i in range(rounds):
            order = list(targets) if i % 2 == 0 else list(reversed(targets))
            figures = {name: ab(targets[name], body, count, conc) for name in order}
            for name in order:
                say(_line(f"{name} (round {i + 1})", figures[name]))
            results["rounds"].append(figures)

    say("PostgreSQL: serve --workers 1 vs --workers 2, alternating, fresh schema each")
    results["postgres"] = []
    with postgres_server() as pg:
        for i in range(rounds):
            for workers in (1, 2) if i % 2 == 0 else (2, 1):
                _reset(pg)
                with service(tmp, pg, workers, f"pg-{workers}") as url:
                    ab(url + PATH, body, warm, conc)
                    f = ab(url + PATH, body, count, conc)
                say(_line(f"postgres {workers} process(es) (round {i + 1})", f))
                results["postgres"].append({"workers": workers, **f})

    results["verdict"] = _verdict(results)
    results["machine_after"] = machine_note()
    remove_scratch(tmp)
    return results


def _verdict(results: dict[str, Any]) -> dict[str, Any]:
    ratios = [r["service"]["rate"] / r["floor"]["rate"] for r in results["rounds"]]
    p99s = [r["service"]["p99_ms"] for r in results["rounds"]]
    one = [p["rate"] for p in results["postgres"] if p["workers"] == 1]
    two = [p["rate"] for p in results["postgres"] if p["workers"] == 2]
    scale = [b / a for a, b in zip(one, two, strict=True)]
    clean = all(
        f["failed"] + f["non_2xx"] == 0 for r in results["rounds"] for f in r.values()
    ) and all(p["failed"] + p["non_2xx"] == 0 for p in results["postgres"])
    verdict = {
        "floor_ratios": [round(r, 2) for r in ratios],
        "service_p99_ms": p99s,
        "postgres_scale": [round(s, 2) for s in scale],
        "floor_ratio_met": min(ratios) >= AIM_FLOOR_RATIO,
        "p99_met": max(p99s) < AIM_P99_MS,
        "scale_met": min(scale) >= AIM_SCALE,
        "clean": clean,
    }
    say("-- native summary")
    say(
        f"  service / floor per round: {', '.join(fmt_ratio(r) for r in ratios)} "
        f"(aim >= {AIM_FLOOR_RATIO}) [{'MET' if verdict['floor_ratio_met'] else 'NOT MET'}]"
    )
    say(
        f"  service p99 per round: {p99s} ms (aim < {AIM_P99_MS:.0f}) "
        f"[{'MET' if verdict['p99_met'] else 'NOT MET'}]"
    )
    say(
        f"  PostgreSQL 2 processes / 1 per round: {', '.join(fmt_ratio(s) for s in scale)} "
        f"(aim >= {AIM_SCALE}) [{'MET' if verdict['scale_met'] else 'NOT MET'}]"
    )
    if not clean:
        say("  WARNING: some requests failed or were not 2xx")
    return verdict
