"""``python -m bench --only mapping`` measures what it says (no timing is asserted here)."""

from __future__ import annotations

import orjson

from bench import mapping
from fhir_mappings.medication_request import order_from_fhir
from services.infusion_bridge.domain.catalog import load_catalog


def test_every_variant_maps_the_same_distinct_orders() -> None:
    raw = mapping.orders(4)
    assert len({orjson.loads(r)["id"] for r in raw}) == 4
    variants = mapping.variants()
    for r in raw:
        order = order_from_fhir(orjson.loads(r), load_catalog())
        assert variants["order_from_fhir"](r) == order
        assert variants["prepare_order"](r).order == order
        assert variants["model_validate_json"](r).id == order.id


def test_figures_name_every_variant() -> None:
    figures = mapping.measure(mapping.orders(3), passes=2)
    assert set(figures) == {
        "orjson.loads",
        "model_validate_json",
        "order_from_fhir",
        "prepare_order",
    }
    assert all(f["best_us"] > 0 and f["median_us"] >= f["best_us"] for f in figures.values())
