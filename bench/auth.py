"""What sign-in costs: order intake and a cheap read with token checks on and off, same run.

Two service processes on SQLite, identical but for sign-in: one verifies every request's
bearer token against a local issuer's JWKS (as in production), the other runs with
``INFUSION_AUTH_DISABLED`` (loopback only). ``ab`` (apache2-utils, a native load generator,
so the client does not eat the cores it measures) drives them in alternating rounds.
Both paths write the audit record; only the token check differs.

Aim (issue #9): intake throughput with checks on at most 5 % below checks off.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._common import Hapi, Service, machine_note, remove_scratch, say
from bench.load_generators import load, require
from harness.fhir_payloads import medication_request

NEEDS_HAPI = False
AIM_SLOWDOWN_PCT = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("auth")
    group.add_argument("--auth-requests", type=int, default=3000, help="requests per round (3000)")
    group.add_argument("--auth-concurrency", type=int, default=16, help="ab -c (16)")
    group.add_argument("--auth-rounds", type=int, default=2, help="on/off rounds (2)")


async def run(args: argparse.Namespace, hapi: Hapi) -> dict[str, Any]:
    del hapi  # the orders name a catalog drug by code: no EHR call on this path
    require(("ab",))
    n = 300 if args.quick else args.auth_requests
    c = args.auth_concurrency
    tmp = Path(tempfile.mkdtemp(prefix="infusion-bench-auth-"))
    body = tmp / "order.json"
    body.write_bytes(orjson.dumps(medication_request(subject={"reference": "Patient/bench"})))
    common = {"INFUSION_DELIVERY_ENABLED": "false"}
    on = Service(tmp / "on.db", "http://127.0.0.1:9/fhir", tmp / "on.log", dict(common))
    off = Service(
        tmp / "off.db", "http://127.0.0.1:9/fhir", tmp / "off.log", dict(common), auth=False
    )
    results: dict[str, Any] = {"requests": n, "concurrency": c, "rounds": []}
    on.start()
    off.start()
    token = on.auth_headers["Authorization"].removeprefix("Bearer ")
    read_path = "/orders/bench-read"  # one order by id: the same work however many exist
    one = orjson.loads(body.read_bytes()) | {"id": "bench-read"}
    try:
        for svc in (on, off):  # warm-up, not measured
            put = httpx.put(
                f"{svc.base_url}/fhir/MedicationRequest/bench-read",
                json=one,
                headers={"Content-Type": "application/fhir+json", **svc.auth_headers},
            )
            put.raise_for_status()
            url = f"{svc.base_url}/fhir/MedicationRequest"
            load("ab", url, body, max(n // 10, 50), c, bearer=token)
        for i in range(1 if args.quick else args.auth_rounds):
            row: dict[str, Any] = {}
            order = (("on", on), ("off", off))
            for label, svc in order if i % 2 == 0 else order[::-1]:  # alternate who goes first
                # the same header to both: the one with checks off never reads it
                intake = f"{svc.base_url}/fhir/MedicationRequest"
                row[f"intake_{label}"] = load("ab", intake, body, n, c, bearer=token)
                row[f"read_{label}"] = load(
                    "ab", f"{svc.base_url}{read_path}", None, n, c, bearer=token
                )
            for kind in ("intake", "read"):
                checked, unchecked = row[f"{kind}_on"], row[f"{kind}_off"]
                slower = 100 * (1 - checked["rate"] / unchecked["rate"])
                row[f"{kind}_slowdown_pct"] = round(slower, 1)
                say(
                    f"round {i + 1} {kind}: on {checked['rate']:.0f} req/s "
                    f"(p99 {checked['p99_ms']:.0f} ms), off {unchecked['rate']:.0f} req/s "
                    f"(p99 {unchecked['p99_ms']:.0f} ms): {slower:+.1f} % with checks on"
                )
            results["rounds"].append(row)
    finally:
        on.stop()
        off.stop()
        remove_scratch(tmp)
    worst = max(r["intake_slowdown_pct"] for r in results["rounds"])
    results["aim"] = {
        "intake_slowdown_pct_max": worst,
        "met": worst <= AIM_SLOWDOWN_PCT,
        "load": machine_note(),
    }
    say(
        f"aim (intake at most {AIM_SLOWDOWN_PCT:.0f} % slower with checks on): "
        f"{'met' if worst <= AIM_SLOWDOWN_PCT else 'NOT met'} (worst round {worst:+.1f} %)"
    )
    return results
