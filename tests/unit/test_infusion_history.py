"""Next-due rules and cumulative doses, per the catalog's data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.domain.history import Dose, drug_history, next_dose, with_mg_per_m2
from services.infusion_bridge.domain.orders import Quantity

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
    assert due == date(2026, 1, 19) + timedelta(weeks=24)
    assert "every 24 weeks" in rule


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
