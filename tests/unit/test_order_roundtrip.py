"""order -> FHIR R4 MedicationRequest -> order is stable."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings import codes
from fhir_mappings.medication_request import order_from_fhir, order_to_fhir
from services.infusion_bridge.domain.catalog import DrugEntry, Role, load_catalog
from services.infusion_bridge.domain.order_rules import IMPLAUSIBLE_DOSE_FACTOR, check_order
from services.infusion_bridge.domain.orders import (
    Identifier,
    InfusionOrder,
    OrderIntent,
    OrderStatus,
    Quantity,
    Rate,
    Schedule,
)

CATALOG = load_catalog()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "orders"
CORPUS = sorted(p.name for p in FIXTURES.glob("*.json"))

# --- strategies ---------------------------------------------------------------------------------

fhir_ids = st.from_regex(r"[A-Za-z0-9\-.]{1,24}", fullmatch=True)
texts = (
    st.text(
        alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters=" .,;-()%+='"),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)
offsets = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=1)),
        timezone(timedelta(hours=-4)),
        timezone(timedelta(hours=5, minutes=30)),
    ]
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=offsets
)
date_only = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)).map(
    lambda d: datetime(d.year, d.month, d.day, tzinfo=UTC)
)
date_times = st.one_of(instants, date_only)
positive = st.floats(min_value=0.001, max_value=5000, allow_nan=False, allow_infinity=False)


def plausible_doses(entry: DrugEntry) -> st.SearchStrategy[Quantity]:
    """Doses in the drug's units, up to the order rules' implausibility limit."""

    def in_unit(unit: str) -> st.SearchStrategy[Quantity]:
        typical = entry.typical_dose
        top = 5000.0
        if typical is not None and typical.unit == unit:
            top = typical.high * IMPLAUSIBLE_DOSE_FACTOR
        values = st.floats(min_value=0.001, max_value=top, allow_nan=False, allow_infinity=False)
        return values.map(lambda v: Quantity(value=v, unit=unit))

    return st.sampled_from(entry.dose_units).flatmap(in_unit)


time_units = st.sampled_from(["s", "min", "h", "d", "wk", "mo", "a"])
references = st.builds(
    lambda t, i: f"{t}/{i}",
    st.sampled_from(["Condition", "Observation", "CarePlan", "ServiceRequest"]),
    fhir_ids,
)
identifiers = st.builds(
    Identifier,
    system=st.none() | st.sampled_from(["urn:oid:2.16.840.1.113883.3.999", "https://ids.example"]),
    value=texts,
)


@st.composite
def drugs(draw: st.DrawFn) -> tuple[DrugEntry, tuple[str, Literal["rxnorm", "ndc"]], Role]:
    entry = draw(st.sampled_from(CATALOG.drugs))
    known: list[tuple[str, Literal["rxnorm", "ndc"]]] = [
        (c.code, "rxnorm") for c in entry.rxnorm if c.verified
    ]
    known += [(n.code, "ndc") for n in entry.ndc if n.verified]
    code = draw(st.sampled_from(known))
    role: Role
    if entry.drug_class == "both":
        role = draw(st.sampled_from(["infusion", "premedication"]))
    elif entry.drug_class == "infusion":
        role = "infusion"
    else:
        role = "premedication"
    return entry, code, role


@st.composite
def schedules(draw: st.DrawFn) -> Schedule | None:
    if draw(st.booleans()):
        return None
    period = draw(st.none() | positive)
    duration = draw(st.none() | positive)
    bounds_start = draw(st.none() | date_times)
    day_offsets: tuple[int, ...] = ()
    if bounds_start is not None:
        day_offsets = tuple(sorted(draw(st.lists(st.integers(0, 400), max_size=4))))
    schedule = Schedule(
        frequency=draw(st.none() | st.integers(1, 12)),
        period=period,
        period_unit=draw(time_units) if period is not None else None,
        count=draw(st.none() | st.integers(1, 30)),
        duration=duration,
        duration_unit=draw(time_units) if duration is not None else None,
        bounds_start=bounds_start,
        bounds_end=draw(st.none() | date_times),
        day_offsets=day_offsets,
        text=draw(st.none() | texts),
    )
    return None if schedule == Schedule() else schedule


rates = st.one_of(
    st.none(),
    st.builds(lambda v: Rate(numerator=Quantity(value=v, unit="mL/h")), positive),
    st.builds(
        lambda v, d, u: Rate(
            numerator=Quantity(value=v, unit=u), denominator=Quantity(value=d, unit="h")
        ),
        positive,
        st.sampled_from([1.0, 0.5, 2.0]),
        st.sampled_from(["mg", "mL"]),
    ),
)


@st.composite
def orders(draw: st.DrawFn) -> InfusionOrder:
    entry, code, role = draw(drugs())
    if role == "infusion":
        route_code: str | None = draw(st.sampled_from(sorted(codes.INTRAVENOUS_ROUTES)))
    else:
        route_code = draw(st.none() | st.sampled_from(sorted(codes.PREMEDICATION_ROUTES)))
    route_display = draw(st.none() | st.sampled_from(["Intravenous route", "Oral route", "IV"]))

    based_on = draw(st.lists(references, max_size=2))
    # methylprednisolone is a premedication exactly when it is based on another order
    needs_request = role == "premedication" if entry.drug_class == "both" else draw(st.booleans())
    if needs_request:
        based_on.append(f"MedicationRequest/{draw(fhir_ids)}")

    return InfusionOrder(
        id=draw(fhir_ids),
        version_id=draw(st.none() | st.integers(0, 10**6)),
        last_updated=draw(st.none() | instants),
        status=draw(st.sampled_from(OrderStatus)),
        intent=draw(st.sampled_from(OrderIntent)),
        patient=f"Patient/{draw(fhir_ids)}",
        drug=entry.to_drug(code[0], role, system=code[1]),
        role=role,
        dose=draw(plausible_doses(entry)),
        body_surface_area_m2=draw(
            st.none() | st.floats(0.5, 3.0, allow_nan=False, allow_infinity=False)
        ),
        route_code=route_code,
        route_display=route_display,
        rate=draw(rates),
        schedule=draw(schedules()),
        dosage_text=draw(st.none() | texts),
        authored_on=draw(st.none() | date_times),
        requester=draw(st.none() | fhir_ids.map(lambda i: f"Practitioner/{i}")),
        reasons=tuple(draw(st.lists(texts, max_size=2)) + draw(st.lists(references, max_size=2))),
        notes=tuple(draw(st.lists(texts, max_size=3))),
        identifiers=tuple(draw(st.lists(identifiers, max_size=2))),
        group_identifier=draw(st.none() | identifiers),
        based_on=tuple(based_on),
    )


# --- properties ---------------------------------------------------------------------------------


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(orders())
def test_order_to_fhir_and_back_is_stable(order: InfusionOrder) -> None:
    assert check_order(order, CATALOG) == []  # the strategy draws valid orders only
    resource = order_to_fhir(order)
    MedicationRequest.model_validate(resource)  # valid R4 structure
    wire: dict[str, Any] = json.loads(json.dumps(resource))  # what actually travels
    assert order_from_fhir(wire, CATALOG) == order


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_from_to_from_is_stable(name: str) -> None:
    medications = {
        f"Medication/{m['id']}": m
        for m in (json.loads(p.read_text()) for p in (FIXTURES / "medications").glob("*.json"))
    }
    original = order_from_fhir(
        json.loads((FIXTURES / name).read_text()), CATALOG, medications=medications
    )
    assert check_order(original, CATALOG) == []
    again = order_from_fhir(json.loads(json.dumps(order_to_fhir(original))), CATALOG)
    assert again == original
    assert order_to_fhir(again) == order_to_fhir(original)
