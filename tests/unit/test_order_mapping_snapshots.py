"""The order mapping gives the same InfusionOrder, value for value and type for type, as it did
before it was made faster: every order of ``tests/fixtures/orders`` (and a few variants of
them and of the benchmark order) against ``tests/golden/orders/*.json``, the orders the
mapping produced then.

Each mapped order must also equal the order pydantic builds by *validating* its own dump, so
that any part of it built without validation (``model_construct``) is exactly what
validation would have built.

Regenerate the snapshots only for an intended change of the mapping, with
``UPDATE_GOLDENS=1 .venv/bin/pytest tests/unit/test_order_mapping_snapshots.py``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from fhir_mappings.medication_request import order_from_fhir
from harness.fhir_payloads import medication_request, premedication
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.domain.order_rules import check_order
from services.infusion_bridge.domain.orders import InfusionOrder

CATALOG = load_catalog()
TESTS = Path(__file__).resolve().parents[1]
FIXTURES = TESTS / "fixtures" / "orders"
SNAPSHOTS = TESTS / "golden" / "orders"
Json = dict[str, Any]


def _fixture(name: str) -> Callable[[], Json]:
    return lambda: json.loads((FIXTURES / name).read_text())


def _edit(base: Callable[[], Json], change: Callable[[Json], None]) -> Callable[[], Json]:
    def build() -> Json:
        body = copy.deepcopy(base())
        change(body)
        return body

    return build


def _bench_order() -> Json:
    body = medication_request()
    body["id"] = "bench-order"
    body["identifier"][0]["value"] = "ORD-bench"
    return body


def _set_dosage(**values: Any) -> Callable[[Json], None]:
    def change(body: Json) -> None:
        body["dosageInstruction"][0].update(values)

    return change


def _set(**values: Any) -> Callable[[Json], None]:
    return lambda body: body.update(values)


def _without_route_and_timing(body: Json) -> None:
    body.update(id="premed-2", identifier=[{"value": "ORD-premed-2"}])
    del body["dosageInstruction"][0]["route"], body["dosageInstruction"][0]["timing"]


INPUTS: dict[str, Callable[[], Json]] = {
    name.removesuffix(".json"): _fixture(name)
    for name in sorted(p.name for p in FIXTURES.glob("*.json"))
}
INPUTS |= {
    "bench-order": _bench_order,
    "premedication": _edit(
        lambda: premedication("MedicationRequest/bench-order"),
        _set(id="premed-1", identifier=[{"system": "urn:ehr:orders", "value": "ORD-premed"}]),
    ),
    "partial-dates": _edit(
        _fixture("ocrelizumab-initial-day1-day15.json"),
        _set(authoredOn="2025-02"),
    ),
    "year-only-authored": _edit(_bench_order, _set(authoredOn="2025")),
    "local-offsets-and-meta": _edit(
        _bench_order,
        _set(
            authoredOn="2025-03-30T01:30:00-07:00",
            meta={"versionId": "12", "lastUpdated": "2025-03-30T08:30:00.123456+05:30"},
        ),
    ),
    "rate-ratio-and-duration": _edit(
        _bench_order,
        _set_dosage(
            doseAndRate=[
                {
                    "doseQuantity": {"value": 300.5, "unit": "milligram", "code": "mg"},
                    "rateRatio": {
                        "numerator": {"value": 250, "code": "mg"},
                        "denominator": {"value": 1.5, "unit": "h"},
                    },
                }
            ],
            timing={
                "repeat": {
                    "count": 2,
                    "duration": 3.5,
                    "durationUnit": "h",
                    "boundsPeriod": {"start": "2025-05-01", "end": "2025-05-20T00:00:00Z"},
                },
                "event": ["2025-05-15T09:00:00+02:00", "2025-05-01T09:00:00+02:00"],
                "code": {"coding": [{"code": "QD", "display": "daily"}]},
            },
        ),
    ),
    "no-route-no-timing": _edit(
        lambda: premedication("MedicationRequest/x", route="26643006"),
        _without_route_and_timing,
    ),
    "many-identifiers-notes-reasons": _edit(
        _bench_order,
        _set(
            identifier=[
                {"value": "no-system"},
                {"system": "urn:a", "value": "A-1"},
                {"system": "urn:b"},
            ],
            groupIdentifier={"system": "urn:g", "value": "G-1"},
            note=[{"text": "first"}, {"authorString": "x", "text": "second"}],
            reasonReference=[{"reference": "Condition/ms"}, {"display": "relapse"}],
            basedOn=[{"reference": "CarePlan/cp-1"}],
        ),
    ),
}


def _structure(value: Any) -> Any:
    """``value`` with the type of every part beside it (``==`` alone says 600 == 600.0)."""
    if isinstance(value, BaseModel):
        return (
            type(value).__name__,
            {name: _structure(getattr(value, name)) for name in type(value).model_fields},
        )
    if isinstance(value, tuple | list):
        return (type(value).__name__, [_structure(v) for v in value])
    if isinstance(value, Enum):
        return (type(value).__name__, value.value)
    if isinstance(value, datetime):  # the offset, not the tzinfo class (JSON keeps no class)
        return (type(value).__name__, value.isoformat(), value.utcoffset())
    return (type(value).__name__, repr(value))


def _medications() -> dict[str, Json]:
    return {
        f"Medication/{m['id']}": m
        for m in (json.loads(p.read_text()) for p in (FIXTURES / "medications").glob("*.json"))
    }


def _mapped(name: str) -> InfusionOrder:
    return order_from_fhir(INPUTS[name](), CATALOG, medications=_medications())


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_mapping_gives_the_snapshot_order(name: str) -> None:
    order = _mapped(name)
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("UPDATE_GOLDENS"):
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(order.model_dump_json(indent=2) + "\n")
    expected = InfusionOrder.model_validate_json(path.read_text())
    assert order == expected
    assert order.model_dump_json() == expected.model_dump_json()
    assert _structure(order) == _structure(expected)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_mapped_order_is_what_validation_builds(name: str) -> None:
    order = _mapped(name)
    validated = InfusionOrder.model_validate(order.model_dump())
    assert order == validated
    assert _structure(order) == _structure(validated)
    assert check_order(order, CATALOG) == []


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_mapping_leaves_the_resource_as_it_was(name: str) -> None:
    # the FHIR models validate the caller's dict itself (no copy): intake keeps it as received
    resource, medications = INPUTS[name](), _medications()
    before = copy.deepcopy((resource, medications))
    order_from_fhir(resource, CATALOG, medications=medications)
    assert (resource, medications) == before
