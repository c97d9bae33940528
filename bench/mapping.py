"""Mapping one order against ``fhir.resources``' own validation of the same bytes, in-process.

Per order (the benchmark order, ``harness.fhir_payloads.medication_request`` with an ``id``,
each one distinct), on the same bytes, in the same process and passes:

- ``model_validate_json``: ``MedicationRequest.model_validate_json(raw)`` (fhir.resources R4B),
  the floor: structure checks and nothing else;
- ``order_from_fhir``: ``order_from_fhir(orjson.loads(raw), catalog)`` (the FHIR checks, then
  the domain order);
- ``prepare_order``: ``prepare_order(orjson.loads(raw), catalog)``, what intake does before it
  stores an order: placeholders, the mapping, the order rules.

Each pass times every variant over all orders (variants interleaved, so a busy machine
slows them alike), in CPU time of this thread (``time.thread_time``: on a shared machine the
time other processes get is not counted, though their use of the caches still is); figures
are the best and the median µs/order of the passes, after a warm-up.

Aim (issue #11, which names ``order_from_fhir`` as "mapping one order"): ``order_from_fhir``
<= 1.1x ``model_validate_json`` (best of 5). ``prepare_order`` adds the domain rules and the
placeholder check; its ratio is printed beside it, not judged.

    .venv/bin/python -m bench --only mapping [--quick]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fhir.resources.R4B.medicationrequest import MedicationRequest

from bench._common import Hapi, fmt_ratio, machine_note, say
from fhir_mappings.medication_request import order_from_fhir
from harness.fhir_payloads import medication_request
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.usecases.order_intake import prepare_order

NEEDS_HAPI = False
AIM_RATIO = 1.1
WARM_UP = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mapping")
    group.add_argument("--map-orders", type=int, help="distinct orders per pass (2000; quick 500)")
    group.add_argument("--map-passes", type=int, help="passes over the orders (5; quick 3)")


def orders(n: int) -> list[bytes]:
    """``n`` distinct benchmark orders as the bytes a client sends (own id and identifier)."""
    return [
        orjson.dumps(
            {
                **medication_request(subject={"reference": f"Patient/p{i % 20}"}, requester=None),
                "id": uuid.uuid4().hex,
            }
        )
        for i in range(n)
    ]


def variants() -> dict[str, Callable[[bytes], Any]]:
    catalog = load_catalog()
    return {
        "orjson.loads": orjson.loads,
        "model_validate_json": MedicationRequest.model_validate_json,
        "order_from_fhir": lambda raw: order_from_fhir(orjson.loads(raw), catalog),
        "prepare_order": lambda raw: prepare_order(orjson.loads(raw), catalog),
    }


def _pass_us(fn: Callable[[bytes], Any], raw: Sequence[bytes]) -> float:
    gc.collect()
    t0 = time.thread_time()
    for item in raw:
        fn(item)
    return (time.thread_time() - t0) / len(raw) * 1e6


def measure(raw: Sequence[bytes], passes: int) -> dict[str, dict[str, float]]:
    """Best and median µs/order of each variant over ``passes`` interleaved passes."""
    fns = variants()
    for item in raw[:WARM_UP]:
        for fn in fns.values():
            fn(item)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(passes):
        for name, fn in fns.items():
            times[name].append(_pass_us(fn, raw))
    return {
        name: {"best_us": round(min(t), 2), "median_us": round(statistics.median(t), 2)}
        for name, t in times.items()
    }


async def run(args: argparse.Namespace, hapi: Hapi) -> dict[str, Any]:
    n = args.map_orders or (500 if args.quick else 2000)
    passes = args.map_passes or (3 if args.quick else 5)
    raw = orders(n)
    mean_bytes = sum(map(len, raw)) / len(raw)
    say(
        f"== mapping: {n} distinct orders ({mean_bytes:.0f} bytes each) x {passes} passes, "
        f"in-process; machine: {machine_note()}"
    )
    figures = measure(raw, passes)
    floor = figures["model_validate_json"]
    for name, f in figures.items():
        ratio = f"  {fmt_ratio(f['best_us'] / floor['best_us'])} of model_validate_json"
        say(
            f"  {name:20s} {f['best_us']:8.1f} CPU µs/order best, {f['median_us']:8.1f} median"
            + ("" if name == "model_validate_json" else ratio)
        )
    ratio_best = figures["order_from_fhir"]["best_us"] / floor["best_us"]
    ratio_median = figures["order_from_fhir"]["median_us"] / floor["median_us"]
    prepare = figures["prepare_order"]["best_us"] / floor["best_us"]
    met = ratio_best <= AIM_RATIO
    say(
        f"  order_from_fhir / model_validate_json: {fmt_ratio(ratio_best)} best, "
        f"{fmt_ratio(ratio_median)} median; aim <= {fmt_ratio(AIM_RATIO)} "
        f"[{'MET' if met else 'NOT MET'}] (prepare_order, with the rules: "
        f"{fmt_ratio(prepare)}); machine: {machine_note()}"
    )
    return {
        "settings": {"orders": n, "passes": passes, "mean_bytes": round(mean_bytes, 1)},
        "figures": figures,
        "verdict": {
            "aim_ratio": AIM_RATIO,
            "ratio_best": round(ratio_best, 3),
            "ratio_median": round(ratio_median, 3),
            "prepare_order_ratio_best": round(prepare, 3),
            "met": met,
        },
    }
