"""Next-due rules and cumulative doses, per the catalog's data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.domain.history import (
    Dose,
    OrderTiming,
    drug_history,
    next_dose,
    patient_history,
    with_mg_per_m2,
)
from services.infusion_bridge.domain.orders import Quantity, Schedule

CATALOG = load_catalog()
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def doses(*spec: tuple[int, float, str]) -> list[Dose]:
    return [
        Dose(session_id=f"s{i}", given_at=T0 + timedelta(days=day), dose=Quantity(value=v, unit=u))
        for i, (day, v, u) in enumerate(spec)
    ]


def test_ocrelizumab_loading_doses_then_every_24_weeks() -> None:
    drug = CATALOG.by_key("ocrelizumab")
    assert drug is not None
    due, rule = next_dose(drug, doses((0, 300, "mg")), None)
    assert due == date(2026, 1, 19)
    assert "loading dose 2 of 2" in rule
    due, rule = next_dose(drug, doses((0, 300, "mg"), (14, 300, "mg")), None)
    # the label: the first 600 mg dose comes 24 weeks after infusion 1
    assert due == date(2026, 1, 5) + timedelta(weeks=24)
    assert "first maintenance dose 24 weeks after loading dose 1" in rule
    due, rule = next_dose(drug, doses((0, 300, "mg"), (14, 300, "mg"), (168, 600, "mg")), None)
    assert due == date(2026, 6, 22) + timedelta(weeks=24)
    assert "every 24 weeks after the last maintenance dose" in rule


def test_natalizumab_every_4_weeks_and_no_dose_yet() -> None:
    drug = CATALOG.by_key("natalizumab")
    assert drug is not None
    assert next_dose(drug, [], None) == (None, "no dose given yet")
    due, _ = next_dose(drug, doses((0, 300, "mg")), None)
    assert due == date(2026, 2, 2)


def test_alemtuzumab_courses() -> None:
    drug = CATALOG.by_key("alemtuzumab")
    assert drug is not None
    due, rule = next_dose(drug, doses((0, 12, "mg"), (1, 12, "mg"), (2, 12, "mg")), None)
    assert due == date(2026, 1, 8)
    assert "course 1: day 4 of 5" in rule
    course1 = doses(*[(d, 12, "mg") for d in range(5)])
    due, rule = next_dose(drug, course1, None)
    assert due == date(2026, 1, 9) + timedelta(weeks=52)
    assert "course 1 complete (5 days)" in rule
    later = [*course1, *doses((370, 12, "mg"))]
    due, rule = next_dose(drug, later, None)
    assert "course 2: day 2 of 3" in rule


def test_mitoxantrone_cumulative_mg_per_m2_and_lifetime_limit() -> None:
    drug = CATALOG.by_key("mitoxantrone")
    assert drug is not None
    history = drug_history(drug, [], sessions=0)
    assert history.cumulative_mg_per_m2 == 0
    assert history.lifetime_max_mg_per_m2 == 140
    given = doses(*[(d * 91, 12, "mg/m2") for d in range(11)])
    due, rule = next_dose(drug, given, 132)
    assert due == given[-1].given_at.date() + timedelta(weeks=13)
    due, rule = next_dose(drug, given, 144)
    assert due is None
    assert "lifetime maximum of 140 mg/m2" in rule


def test_methylprednisolone_has_no_interval() -> None:
    drug = CATALOG.by_key("methylprednisolone")
    assert drug is not None
    due, rule = next_dose(drug, doses((0, 1000, "mg")), None)
    assert due is None
    assert "no repeat interval" in rule


def test_mg_doses_count_in_mg_per_m2_with_the_body_surface_area() -> None:
    drug = CATALOG.by_key("mitoxantrone")
    assert drug is not None
    known = with_mg_per_m2(doses((0, 21.6, "mg"))[0], 1.8)
    unknown = with_mg_per_m2(doses((91, 20, "mg"))[0], None)
    per_m2 = with_mg_per_m2(doses((182, 12, "mg/m2"))[0], None)
    history = drug_history(drug, [known, unknown, per_m2], sessions=3)
    assert known.mg_per_m2 == 12.0
    assert history.cumulative_mg_per_m2 == 24.0
    assert history.cumulative_incomplete is True
    assert history.total_dose == [Quantity(value=41.6, unit="mg"), Quantity(value=12, unit="mg/m2")]


def ehr_dose(day: int, value: float, unit: str = "mg", n: int = 1) -> Dose:
    return Dose(
        given_at=T0 + timedelta(days=day),
        dose=Quantity(value=value, unit=unit),
        source="ehr",
        ehr_reference=f"MedicationAdministration/ma-{n}/_history/1",
    )


def test_a_600_mg_dose_is_maintenance_even_without_earlier_doses() -> None:
    """The bug: one complete 600 mg infusion counted as 'loading dose 1 of 2'."""
    drug = CATALOG.by_key("ocrelizumab")
    assert drug is not None
    due, rule = next_dose(drug, doses((0, 600, "mg")), None)
    assert due == date(2026, 1, 5) + timedelta(weeks=24)
    assert "maintenance" in rule
    assert "loading" not in rule


def test_maintenance_history_from_the_ehr_is_named_in_the_rule() -> None:
    drug = CATALOG.by_key("ocrelizumab")
    assert drug is not None
    history = [ehr_dose(-168, 600, n=1), ehr_dose(0, 600, n=2)]
    due, rule = next_dose(drug, history, None)
    assert due == date(2026, 6, 22)
    assert "EHR MedicationAdministration/ma-2/_history/1" in rule
    assert "2 doses: 2 from the EHR, 0 charted here" in rule


def test_ublituximab_loading_150_then_450_then_maintenance() -> None:
    drug = CATALOG.by_key("ublituximab")
    assert drug is not None
    due, rule = next_dose(drug, doses((0, 150, "mg")), None)
    assert (due, "loading dose 2 of 2" in rule) == (date(2026, 1, 19), True)
    due, rule = next_dose(drug, doses((0, 150, "mg"), (14, 450, "mg")), None)
    assert due == date(2026, 1, 5) + timedelta(weeks=24)
    due, rule = next_dose(drug, doses((0, 450, "mg")), None)  # a maintenance patient
    assert due == date(2026, 1, 5) + timedelta(weeks=24)
    assert "maintenance" in rule


def test_the_orders_own_period_wins_over_the_regimen() -> None:
    drug = CATALOG.by_key("ocrelizumab")
    assert drug is not None
    timing = OrderTiming("o1", Schedule(frequency=1, period=24, period_unit="wk"))
    due, rule = next_dose(drug, doses((0, 300, "mg")), None, timing)  # regimen would say +2 wk
    assert due == date(2026, 1, 5) + timedelta(weeks=24)
    assert rule.startswith("the order's timing: every 24 wk")


def test_the_orders_event_dates_and_bounds() -> None:
    drug = CATALOG.by_key("ocrelizumab")
    assert drug is not None
    day1 = Schedule(bounds_start=T0, day_offsets=(0, 14))
    due, rule = next_dose(drug, doses((0, 300, "mg")), None, OrderTiming("o1", day1))
    assert due == date(2026, 1, 19)
    assert "timing.event" in rule
    due, rule = next_dose(drug, [], None, OrderTiming("o1", day1))
    assert due == date(2026, 1, 5)
    ending = Schedule(period=4, period_unit="wk", bounds_end=T0 + timedelta(days=20))
    due, rule = next_dose(drug, doses((0, 600, "mg")), None, OrderTiming("o1", ending))
    assert due is None
    assert "ends on 2026-01-25" in rule


def test_a_courses_daily_order_hands_over_to_the_regimen_when_its_count_is_given() -> None:
    drug = CATALOG.by_key("alemtuzumab")
    assert drug is not None
    course = Schedule(frequency=1, period=1, period_unit="d", count=5)
    given = [d.model_copy(update={"order_id": "o1"}) for d in doses((0, 12, "mg"), (1, 12, "mg"))]
    due, rule = next_dose(drug, given, None, OrderTiming("o1", course))
    assert due == date(2026, 1, 7)
    five = [
        d.model_copy(update={"order_id": "o1"}) for d in doses(*[(i, 12, "mg") for i in range(5)])
    ]
    due, rule = next_dose(drug, five, None, OrderTiming("o1", course))
    assert due == date(2026, 1, 9) + timedelta(weeks=52)
    assert "course 1 complete" in rule


def test_alemtuzumab_course_day_3_of_5_counting_ehr_doses() -> None:
    drug = CATALOG.by_key("alemtuzumab")
    assert drug is not None
    due, rule = next_dose(drug, [ehr_dose(0, 12, n=1), ehr_dose(1, 12, n=2)], None)
    assert due == date(2026, 1, 7)
    assert "course 1: day 3 of 5" in rule


def test_mitoxantrone_ehr_doses_count_towards_the_lifetime_limit() -> None:
    drug = CATALOG.by_key("mitoxantrone")
    assert drug is not None
    ehr = [with_mg_per_m2(ehr_dose(91 * i, 12, "mg/m2", n=i), None) for i in range(11)]
    local = with_mg_per_m2(doses((91 * 11, 21.6, "mg"))[0], 1.8)  # 12 mg/m2 charted here
    history = drug_history(drug, [*ehr, with_mg_per_m2(local, 1.8)], sessions=1)
    assert history.cumulative_mg_per_m2 == 144
    assert history.next_due is None
    assert "lifetime maximum of 140" in history.rule
    assert "11 from the EHR" in history.rule
    assert history.ehr_doses == 11


def test_patient_history_lists_drugs_known_only_from_the_ehr() -> None:
    listed = patient_history({}, {"natalizumab": [ehr_dose(0, 300)]}, CATALOG)
    assert [(h.drug, h.sessions, h.ehr_doses) for h in listed] == [("natalizumab", 0, 1)]
