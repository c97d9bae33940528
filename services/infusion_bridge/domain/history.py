"""A patient's infusion history: doses given per drug (charted here and read from the EHR),
cumulative mitoxantrone, next due date.

Pure. The next due date comes from the current order's own timing when it has one (period,
``timing.event`` dates, ``boundsPeriod``); otherwise from the drug's regimen in the catalog
applied to the whole history: a loading regimen while the latest doses *are* loading doses
(``initial_doses.doses``), a course of daily doses (``course_days``), or the plain
``default_interval_weeks`` after the last dose. The rule text names the doses it used and where
they come from. Only sessions in which drug was given (discharged, or stopped early with a
dose) count as doses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel

from .catalog import DrugCatalog, DrugEntry, InitialDoses
from .orders import Quantity, Schedule
from .session_events import InfusionEnd, InfusionStart, Stop
from .sessions import InfusionSession, SessionState

DoseSource = Literal["local", "ehr"]


class Dose(BaseModel):
    session_id: str | None = None
    """The session that gave it (doses charted here)."""
    given_at: datetime
    dose: Quantity
    mg_per_m2: float | None = None
    source: DoseSource = "local"
    ehr_reference: str | None = None
    """``MedicationAdministration/<id>/_history/<version>`` for doses read from the EHR."""
    order_id: str | None = None
    """The order it fulfilled, when known (counts against the order's ``Timing.count``)."""

    @property
    def evidence(self) -> str:
        """``600 mg on 2026-01-05 (EHR MedicationAdministration/7/_history/1)``."""
        where = (
            f"EHR {self.ehr_reference}"
            if self.source == "ehr"
            else f"charted here, session {self.session_id}"
        )
        return (
            f"{self.dose.value:g} {self.dose.unit} on {self.given_at.date().isoformat()} ({where})"
        )


class DrugHistory(BaseModel):
    drug: str
    name: str
    sessions: int
    doses: list[Dose]
    total_dose: list[Quantity]
    """Sum of doses given, one line per unit."""
    ehr_doses: int = 0
    """How many of ``doses`` come from the EHR (the rest were charted here)."""
    cumulative_mg_per_m2: float | None = None
    lifetime_max_mg_per_m2: float | None = None
    cumulative_incomplete: bool = False
    """Some doses were in mg with no body surface area known: the sum is a lower bound."""
    last_given: date | None = None
    next_due: date | None = None
    rule: str


@dataclass(frozen=True)
class OrderTiming:
    """The patient's current order for a drug and its ``dosageInstruction[0].timing``."""

    order_id: str
    schedule: Schedule


def dose_of(session: InfusionSession) -> Dose | None:
    """The dose a session gave, or None if none was given."""
    if session.state not in (SessionState.DISCHARGED, SessionState.STOPPED):
        return None
    end = session.last(InfusionEnd) or session.last(Stop)
    if end is None:
        return None
    event = end.event
    assert isinstance(event, InfusionEnd | Stop)
    start = session.last(InfusionStart)
    given_at = start.event.at if start else event.at
    return Dose(session_id=session.id, given_at=given_at, dose=event.dose_given)


def with_mg_per_m2(dose: Dose, body_surface_area_m2: float | None) -> Dose:
    """The dose also in mg/m2: as given, or mg divided by the order's body surface area."""
    if dose.dose.unit == "mg/m2":
        return dose.model_copy(update={"mg_per_m2": dose.dose.value})
    if dose.dose.unit == "mg" and body_surface_area_m2:
        return dose.model_copy(
            update={"mg_per_m2": round(dose.dose.value / body_surface_area_m2, 2)}
        )
    return dose


def drug_history(
    drug: DrugEntry, doses: list[Dose], *, sessions: int, timing: OrderTiming | None = None
) -> DrugHistory:
    """Totals, cumulative mg/m2 (where the drug has an mg/m2 lifetime limit), next due."""
    doses = sorted(doses, key=lambda d: d.given_at)
    totals: dict[str, float] = defaultdict(float)
    for d in doses:
        totals[d.dose.unit] += d.dose.value
    limit = drug.lifetime_max if drug.lifetime_max and drug.lifetime_max.unit == "mg/m2" else None
    cumulative = round(sum(d.mg_per_m2 or 0 for d in doses), 2) if limit else None
    next_due, rule = next_dose(drug, doses, cumulative, timing)
    return DrugHistory(
        drug=drug.key,
        name=drug.name,
        sessions=sessions,
        doses=doses,
        ehr_doses=sum(1 for d in doses if d.source == "ehr"),
        total_dose=[Quantity(value=round(v, 3), unit=u) for u, v in sorted(totals.items())],
        cumulative_mg_per_m2=cumulative,
        lifetime_max_mg_per_m2=limit.value if limit else None,
        cumulative_incomplete=bool(limit) and any(d.mg_per_m2 is None for d in doses),
        last_given=doses[-1].given_at.date() if doses else None,
        next_due=next_due,
        rule=rule,
    )


def next_dose(
    drug: DrugEntry,
    doses: list[Dose],
    cumulative_mg_per_m2: float | None,
    timing: OrderTiming | None = None,
) -> tuple[date | None, str]:
    """The next due date and the rule that gave it (``doses`` oldest first)."""
    schedule = timing.schedule if timing is not None else None
    if not doses:
        if schedule is not None and schedule.bounds_start is not None:
            start = schedule.bounds_start.date()
            return start, f"the order's timing starts on {start.isoformat()}; no dose given yet"
        return None, "no dose given yet"
    last = doses[-1].given_at.date()
    limit = drug.lifetime_max
    if (
        limit is not None
        and cumulative_mg_per_m2 is not None
        and cumulative_mg_per_m2 >= limit.value
    ):
        return None, (
            f"no further doses: cumulative {cumulative_mg_per_m2:g} {limit.unit} has reached the "
            f"lifetime maximum of {limit.value:g} {limit.unit} ({_sources(doses)})"
        )
    if timing is not None:
        ordered = _order_timing_rule(timing, doses)
        if ordered is not None:
            return ordered
    loading = _loading_rule(drug, doses)
    if loading is not None:
        return loading
    if drug.course_days:
        return _course_rule(drug, doses)
    if drug.default_interval_weeks is None:
        return None, f"{drug.name} has no repeat interval (given as needed)"
    weeks = drug.default_interval_weeks
    kind = (
        "maintenance dose"
        if drug.maintenance_dose is not None and _same(doses[-1].dose, drug.maintenance_dose)
        else "dose"
    )
    return last + timedelta(weeks=weeks), (
        f"every {weeks:g} weeks after the last {kind}: {doses[-1].evidence}; "
        f"history {_sources(doses)}"
    )


_UNIT_DAYS = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1,
    "wk": 7,
    "mo": 30.4375,
    "a": 365.25,
}
"""Days per UCUM unit of time (``mo`` and ``a`` are UCUM's mean month and year)."""


def _order_timing_rule(timing: OrderTiming, doses: list[Dose]) -> tuple[date | None, str] | None:
    """The next date the order's own timing asks for, or None when it says nothing about it
    (the regimen decides then)."""
    schedule = timing.schedule
    last = doses[-1]
    end = schedule.bounds_end.date() if schedule.bounds_end is not None else None
    if schedule.day_offsets and schedule.bounds_start is not None:
        anchor = schedule.bounds_start.date()
        upcoming = [
            anchor + timedelta(days=o)
            for o in schedule.day_offsets
            if anchor + timedelta(days=o) > last.given_at.date()
        ]
        if upcoming:
            return upcoming[0], (
                f"the order's timing.event date after the last dose: {last.evidence}"
            )
        return None
    if schedule.period is None or schedule.period_unit is None:
        return None
    if schedule.count is not None:
        given = sum(1 for d in doses if d.order_id == timing.order_id)
        if given >= schedule.count:
            return None  # the order's doses are all given: the regimen says what comes next
    days = schedule.period * _UNIT_DAYS[schedule.period_unit] / max(schedule.frequency or 1, 1)
    due = last.given_at.date() + timedelta(days=round(days))
    period = f"{schedule.period:g} {schedule.period_unit}"
    if end is not None and due > end:
        return None, (
            f"the order's timing (every {period}) ends on {end.isoformat()} before the next "
            f"dose would fall; last dose: {last.evidence}"
        )
    return due, f"the order's timing: every {period} after the last dose: {last.evidence}"


def _loading_rule(drug: DrugEntry, doses: list[Dose]) -> tuple[date | None, str] | None:
    """While the latest doses are the loading doses of the label: the next loading dose, or
    the first maintenance dose (counted from loading dose 1). None outside loading."""
    initial = drug.initial_doses
    if initial is None:
        return None
    series = _loading_series(initial, drug.dose_units[0], doses)
    if series is None:
        if initial.doses or len(doses) >= initial.count:
            return None
        series = doses  # no loading doses listed: the first ``count`` doses are loading
    first, last = series[0], series[-1]
    if len(series) < initial.count:
        weeks = initial.weeks_apart
        return last.given_at.date() + timedelta(weeks=weeks), (
            f"loading dose {len(series) + 1} of {initial.count}: {weeks:g} weeks after loading "
            f"dose {len(series)}: {last.evidence}"
        )
    weeks = drug.default_interval_weeks or 0
    return first.given_at.date() + timedelta(weeks=weeks), (
        f"loading complete ({initial.count} doses); first maintenance dose {weeks:g} weeks "
        f"after loading dose 1: {first.evidence}"
    )


def _loading_series(initial: InitialDoses, unit: str, doses: list[Dose]) -> list[Dose] | None:
    """The longest tail of ``doses`` that is the start of the loading regimen, if any."""
    if not initial.doses:
        return None
    gap = timedelta(weeks=initial.weeks_apart * 3)  # a late loading dose is still loading
    found: list[Dose] | None = None
    for start in range(len(doses) - 1, max(len(doses) - initial.count, 0) - 1, -1):
        tail = doses[start:]
        if all(
            d.dose.unit == unit and abs(d.dose.value - initial.doses[i]) < 0.5
            for i, d in enumerate(tail)
        ) and all(b.given_at - a.given_at <= gap for a, b in pairwise(tail)):
            found = tail
    return found


def _same(a: Quantity, b: object) -> bool:
    value, unit = getattr(b, "value", None), getattr(b, "unit", None)
    return a.unit == unit and value is not None and abs(a.value - value) < 0.5


def _sources(doses: list[Dose]) -> str:
    ehr = sum(1 for d in doses if d.source == "ehr")
    return f"{len(doses)} doses: {ehr} from the EHR, {len(doses) - ehr} charted here"


def _course_rule(drug: DrugEntry, doses: list[Dose]) -> tuple[date | None, str]:
    courses: list[list[date]] = []
    for d in doses:
        day = d.given_at.date()
        if courses and (day - courses[-1][-1]).days <= 2:
            courses[-1].append(day)
        else:
            courses.append([day])
    n = len(courses)
    planned = drug.course_days[min(n, len(drug.course_days)) - 1]
    current = courses[-1]
    if len(current) < planned:
        return current[-1] + timedelta(days=1), (
            f"course {n}: day {len(current) + 1} of {planned} daily doses"
        )
    weeks = drug.default_interval_weeks or 52
    return current[-1] + timedelta(weeks=weeks), (
        f"course {n} complete ({planned} days); the next course {weeks:g} weeks after its last "
        f"dose ({current[-1].isoformat()})"
    )


def patient_history(
    sessions_per_drug: Mapping[str, int],
    doses_per_drug: Mapping[str, list[Dose]],
    catalog: DrugCatalog,
    timings: Mapping[str, OrderTiming] | None = None,
) -> list[DrugHistory]:
    """One entry per drug the patient had sessions or EHR doses for, in catalog-key order."""
    out = []
    for key in sorted(set(sessions_per_drug) | set(doses_per_drug)):
        entry = catalog.by_key(key)
        if entry is not None:
            out.append(
                drug_history(
                    entry,
                    doses_per_drug.get(key, []),
                    sessions=sessions_per_drug.get(key, 0),
                    timing=(timings or {}).get(key),
                )
            )
    return out
