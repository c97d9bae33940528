"""Billing units of a finished session and the safety gates, on pure domain objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.infusion_bridge.domain.billing import administration_units, session_billing
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.domain.ehr_records import BodyMeasurement
from services.infusion_bridge.domain.gates import GateContext, check_gates, infused_minutes
from services.infusion_bridge.domain.orders import Quantity
from services.infusion_bridge.domain.session_events import (
    GateOverride,
    InfusionEnd,
    InfusionStart,
    Pause,
    Premedication,
    RateChange,
    Resume,
    SessionEvent,
    TouchChecklist,
)
from services.infusion_bridge.domain.sessions import InfusionSession, RecordedEvent, SessionState

CATALOG = load_catalog()
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def session(
    drug: str, *events: Any, state: SessionState = SessionState.IV_PLACED
) -> InfusionSession:
    return InfusionSession(
        id="s1",
        order_id="o1",
        patient="Patient/p1",
        drug_key=drug,
        state=state,
        created_at=T0,
        events=tuple(
            RecordedEvent(seq=i + 1, id=f"e{i}", recorded_at=e.at, event=e)
            for i, e in enumerate(events)
        ),
    )


def ctx(drug: str, dose: float = 600, **extra: Any) -> GateContext:
    entry = CATALOG.by_key(drug)
    assert entry is not None
    return GateContext(
        catalog=CATALOG,
        drug=entry,
        order_dose=Quantity(value=dose, unit=entry.dose_units[0]),
        infusion_number=extra.pop("infusion_number", 3),
        **extra,
    )


def gates(s: InfusionSession, event: SessionEvent, c: GateContext) -> list[str]:
    return [f.gate for f in check_gates(s, event, c)]


# ------------------------------------------------------------------------------- billing


def test_billing_of_a_3_h_10_min_infusion_with_a_15_min_pause() -> None:
    finished = session(
        "ocrelizumab",
        InfusionStart(at=at(0), rate_ml_per_h=40),
        Pause(at=at(60)),
        Resume(at=at(75)),
        InfusionEnd(at=at(190), dose_given=Quantity(value=600, unit="mg"), volume_ml=500),
        state=SessionState.INFUSION_ENDED,
    )
    billing = session_billing(finished, CATALOG.by_key("ocrelizumab"))
    assert billing is not None
    assert (billing.infusion_start, billing.infusion_stop) == (at(0), at(190))
    assert (billing.infusion_minutes, billing.paused_minutes) == (175, 15)
    assert (billing.hcpcs, billing.hcpcs_units, billing.hcpcs_verified) == ("J2350", 600, True)
    assert [(a.code, a.units) for a in billing.administration] == [("96413", 1), ("96415", 2)]


@pytest.mark.parametrize(
    ("minutes", "units"),
    [
        (10, (0, 0)),
        (15, (0, 0)),
        (16, (1, 0)),
        (60, (1, 0)),
        (90, (1, 0)),
        (91, (1, 1)),
        (150, (1, 1)),
        (151, (1, 2)),
        (240, (1, 3)),
    ],
)
def test_additional_hours_need_more_than_30_minutes(minutes: int, units: tuple[int, int]) -> None:
    assert administration_units(minutes) == units


def test_mitoxantrone_units_are_per_5_mg_from_mg_per_m2_and_bsa() -> None:
    finished = session(
        "mitoxantrone",
        InfusionStart(at=at(0), rate_ml_per_h=200),
        InfusionEnd(at=at(12), dose_given=Quantity(value=12, unit="mg/m2"), volume_ml=50),
        state=SessionState.INFUSION_ENDED,
    )
    billing = session_billing(finished, CATALOG.by_key("mitoxantrone"), bsa_m2=1.8)
    assert billing is not None
    assert (billing.drug_mg, billing.hcpcs, billing.hcpcs_units) == (21.6, "J9293", 5)
    assert billing.administration == []  # 12 minutes: an IV push
    assert "IV push" in billing.note


def test_infused_minutes_exclude_pauses() -> None:
    s = session("ocrelizumab", InfusionStart(at=at(0), rate_ml_per_h=40), Pause(at=at(20)))
    assert infused_minutes(s, at(50)) == 20


# ------------------------------------------------------------------------------- gates


def premeds(minutes_before: float = 30) -> list[Premedication]:
    return [
        Premedication(
            at=at(-minutes_before),
            drug="6902",  # methylprednisolone by RxNorm code
            dose=Quantity(value=100, unit="mg"),
            route="intravenous",
        ),
        Premedication(
            at=at(-minutes_before),
            drug="diphenhydramine",
            dose=Quantity(value=50, unit="mg"),
            route="intravenous",
        ),
    ]


def test_ocrelizumab_start_needs_both_premedications_in_their_window() -> None:
    start = InfusionStart(at=at(0), rate_ml_per_h=40)
    assert gates(session("ocrelizumab", *premeds()), start, ctx("ocrelizumab")) == []
    assert gates(session("ocrelizumab", premeds()[0]), start, ctx("ocrelizumab")) == [
        "premedication"
    ]
    assert gates(session("ocrelizumab", *premeds(120)), start, ctx("ocrelizumab")) == [
        "premedication",
        "premedication",
    ]
    overridden = session(
        "ocrelizumab",
        GateOverride(at=at(-1), gate="premedication", reason="given on the ward", by="Dr A"),
    )
    assert gates(overridden, start, ctx("ocrelizumab")) == []


def test_rate_above_the_protocol_step_is_refused_and_pauses_do_not_count() -> None:
    s = session("ocrelizumab", *premeds(), InfusionStart(at=at(0), rate_ml_per_h=40))
    c = ctx("ocrelizumab", dose=300)
    assert gates(s, RateChange(at=at(10), rate_ml_per_h=60), c) == ["rate"]  # step 1: 30 mL/h
    assert gates(s, RateChange(at=at(31), rate_ml_per_h=60), c) == []
    paused = session(
        "ocrelizumab",
        InfusionStart(at=at(0), rate_ml_per_h=30),
        Pause(at=at(10)),
        Resume(at=at(30)),
    )
    assert gates(paused, RateChange(at=at(35), rate_ml_per_h=60), c) == ["rate"]  # 15 min run
    # 600 mg: option 2 (100 mL/h at once) is allowed
    assert gates(s, RateChange(at=at(5), rate_ml_per_h=100), ctx("ocrelizumab")) == []


def test_natalizumab_needs_a_passed_touch_checklist() -> None:
    start = InfusionStart(at=at(0), rate_ml_per_h=115)
    c = ctx("natalizumab", dose=300)
    assert gates(session("natalizumab"), start, c) == ["touch-checklist"]
    answers = {
        "authorized": True,
        "new_or_worsening_symptoms": False,
        "immunocompromising_condition": False,
        "immunosuppressant_medicines": False,
    }
    passed = TouchChecklist(at=at(-20), **answers)
    assert gates(session("natalizumab", passed), start, c) == []
    failed = TouchChecklist(at=at(-20), **{**answers, "immunosuppressant_medicines": True})
    assert gates(session("natalizumab", failed), start, c) == ["touch-checklist"]


def lvef(value: float, days_before: int) -> BodyMeasurement:
    return BodyMeasurement(
        resource_id="lvef-1",
        patient="Patient/p1",
        kind="lvef",
        value=value,
        unit="%",
        effective=T0 - timedelta(days=days_before),
    )


def test_mitoxantrone_needs_an_lvef_after_the_last_dose_and_not_below_50() -> None:
    start = InfusionStart(at=at(0), rate_ml_per_h=200)
    last = T0 - timedelta(days=91)
    s = session("mitoxantrone")
    assert gates(s, start, ctx("mitoxantrone", 12, last_dose_at=last)) == ["lvef"]
    old = (lvef(60, 100),)  # before the last dose
    assert gates(s, start, ctx("mitoxantrone", 12, last_dose_at=last, lvef=old)) == ["lvef"]
    fresh = (lvef(60, 7),)
    assert gates(s, start, ctx("mitoxantrone", 12, last_dose_at=last, lvef=fresh)) == []
    low = (lvef(45, 7),)
    assert gates(s, start, ctx("mitoxantrone", 12, last_dose_at=last, lvef=low)) == ["lvef"]


def test_alemtuzumab_steroid_only_on_course_days_1_to_3() -> None:
    start = InfusionStart(at=at(0), rate_ml_per_h=25)
    s = session("alemtuzumab")
    assert gates(s, start, ctx("alemtuzumab", 12, course_day=2)) == ["premedication"]
    assert gates(s, start, ctx("alemtuzumab", 12, course_day=4)) == []
