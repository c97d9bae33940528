"""Where does a single order's time go? An in-process probe of ``POST /fhir/MedicationRequest``.

Runs the app in this process (httpx ``ASGITransport``: no sockets, no HAPI; the orders carry a
coded medication, so the service makes no EHR call) and times, per request, the mapping step
(``prepare_order``), the store step (``store_order``) and the whole write transaction
(``write_transaction``: waiting for the writer's turn, BEGIN .. COMMIT), at each
concurrency given.
A diagnostic next to ``bench.intake``, not part of ``python -m bench``:

    .venv/bin/python -m bench.intake_probe --concurrency 1 8 --count 600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

import services.infusion_bridge.usecases.orders as accept_usecase
from bench._common import machine_note, percentile, remove_scratch, say
from harness.fhir_payloads import medication_request
from services.infusion_bridge.app import create_app
from services.infusion_bridge.logging import configure_logging
from services.infusion_bridge.settings import Settings


def _timed(fn: Callable[..., Any], sink: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - t0)

    return wrapper


def _ms(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50) * 1000:7.2f} ms, p99 {percentile(values, 99) * 1000:8.2f} ms"
    )


async def probe(concurrency: int, count: int, warm: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="infusion-bench-probe-"))
    settings = Settings(
        database_url=f"sqlite:///{tmp}/probe.db",
        ehr_base_url="http://127.0.0.1:9/fhir",  # never called for these orders
        sync_interval_seconds=0,
        delivery_enabled=False,
        log_level="WARNING",
    )
    sinks: dict[str, list[float]] = {"prepare_order": [], "store_order": [], "transaction": []}
    # the write transaction: write_transaction (takes the in-process writer turn first,
    # then BEGIN .. COMMIT)
    scope_name = "write_transaction"
    original_scope = getattr(accept_usecase, scope_name)

    @contextlib.contextmanager
    def timed_scope(engine: Any) -> Iterator[Any]:
        t0 = time.perf_counter()
        with original_scope(engine) as db:
            yield db
        sinks["transaction"].append(time.perf_counter() - t0)

    patches = {
        scope_name: timed_scope,
        "prepare_order": _timed(accept_usecase.prepare_order, sinks["prepare_order"]),
        "store_order": _timed(accept_usecase.store_order, sinks["store_order"]),
    }
    saved = {name: getattr(accept_usecase, name) for name in patches}
    for name, value in patches.items():
        setattr(accept_usecase, name, value)
    app = create_app(settings)
    bodies = [
        orjson.dumps(medication_request(subject={"reference": "Patient/p"}, requester=None))
        for _ in range(count + warm)
    ]
    headers = {"Content-Type": "application/fhir+json"}
    latencies: list[float] = []
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://probe"
            ) as client,
        ):
            for body in bodies[count:]:
                await client.post("/fhir/MedicationRequest", content=body, headers=headers)
            for sink in sinks.values():
                sink.clear()
            queue = iter(bodies[:count])

            async def worker() -> None:
                for body in queue:
                    t0 = time.perf_counter()
                    r = await client.post("/fhir/MedicationRequest", content=body, headers=headers)
                    latencies.append(time.perf_counter() - t0)
                    if r.status_code != 201:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")

            t0 = time.perf_counter()
            cpu0 = time.process_time()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
    finally:
        for name, value in saved.items():
            setattr(accept_usecase, name, value)
        remove_scratch(tmp)
    say(
        f"concurrency {concurrency}: {count / elapsed:.0f} req/s, "
        f"{cpu / count * 1000:.1f} ms CPU per order (client included)"
    )
    say(f"  request          {_ms(latencies)}")
    for name, sink in sinks.items():
        say(f"  {name:16s} {_ms(sink)}")
    return {
        "concurrency": concurrency,
        "rate_per_s": round(count / elapsed, 1),
        "cpu_ms_per_order": round(cpu / count * 1000, 2),
        **{
            name: {
                "p50_ms": round(percentile(v, 50) * 1000, 2),
                "p99_ms": round(percentile(v, 99) * 1000, 2),
            }
            for name, v in {"request": latencies, **sinks}.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.intake_probe", description=__doc__)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--warm", type=int, default=80)
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    say(f"intake probe, {args.count} orders per concurrency; {machine_note()}")
    for c in args.concurrency:
        asyncio.run(probe(c, args.count, args.warm))


if __name__ == "__main__":
    main()
