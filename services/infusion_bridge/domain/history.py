"""A patient's infusion history: doses given per drug, cumulative mitoxantrone, next due date.

Pure. The next due date follows the catalog's data for the drug, and says which rule it used:
a loading regimen (``initial_doses``), a course of daily doses (``course_days``), or the
plain ``default_interval_weeks`` after the last dose. Only sessions in which drug was given
(discharged, or stopped early with a dose) count as doses.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from pydantic import BaseModel

from .catalog import DrugCatalog, DrugEntry
from .orders import Quantity
from .sessions import InfusionEnd, InfusionSession, InfusionStart, SessionState, Stop


class Dose(BaseModel):
    session_id: str
    given_at: datetime
    dose: Quantity
    mg_per_m2: float | None = None


class DrugHistory(BaseModel):
    drug: str
    name: str
    sessions: int
    doses: list[Dose]
    total_dose: list[Quantity]
    """Sum of doses given, one line per unit."""
    cumulative_mg_per_m2: float | None = None
    lifetime_max_mg_per_m2: float | None = None
    cumulative_incomplete: bool = False
    """Some doses were in mg with no body surface area known: the sum is a lower bound."""
    last_given: date | None = None
    next_due: date | None = None
    rule: str


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


def drug_history(drug: DrugEntry, doses: list[Dose], *, sessions: int) -> DrugHistory:
    """Totals, cumulative mg/m2 (where the drug has an mg/m2 lifetime limit), next due."""
    doses = sorted(doses, key=lambda d: d.given_at)
    totals: dict[str, float] = defaultdict(float)
    for d in doses:
        totals[d.dose.unit] += d.dose.value
    limit = drug.lifetime_max if drug.lifetime_max and drug.lifetime_max.unit == "mg/m2" else None
    cumulative = round(sum(d.mg_per_m2 or 0 for d in doses), 2) if limit else None
    next_due, rule = next_dose(drug, doses, cumulative)
    return DrugHistory(
        drug=drug.key,
        name=drug.name,
        sessions=sessions,
        doses=doses,
        total_dose=[Quantity(value=round(v, 3), unit=u) for u, v in sorted(totals.items())],
        cumulative_mg_per_m2=cumulative,
        lifetime_max_mg_per_m2=limit.value if limit else None,
        cumulative_incomplete=bool(limit) and any(d.mg_per_m2 is None for d in doses),
        last_given=doses[-1].given_at.date() if doses else None,
        next_due=next_due,
        rule=rule,
    )


def next_dose(
    drug: DrugEntry, doses: list[Dose], cumulative_mg_per_m2: float | None
) -> tuple[date | None, str]:
    """The next due date and the rule that gave it."""
    if not doses:
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
            f"lifetime maximum of {limit.value:g} {limit.unit}"
        )
    if drug.initial_doses and len(doses) < drug.initial_doses.count:
        weeks = drug.initial_doses.weeks_apart
        return last + timedelta(weeks=weeks), (
            f"loading dose {len(doses) + 1} of {drug.initial_doses.count}: "
            f"{weeks:g} weeks after dose {len(doses)} ({last.isoformat()})"
        )
    if drug.course_days:
        return _course_rule(drug, doses)
    if drug.default_interval_weeks is None:
        return None, f"{drug.name} has no repeat interval (given as needed)"
    weeks = drug.default_interval_weeks
    return last + timedelta(weeks=weeks), (
        f"every {weeks:g} weeks after the last dose ({last.isoformat()})"
    )


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
    sessions_per_drug: dict[str, int], doses_per_drug: dict[str, list[Dose]], catalog: DrugCatalog
) -> list[DrugHistory]:
    """One entry per drug the patient had sessions for, in catalog-key order."""
    out = []
    for key in sorted(sessions_per_drug):
        entry = catalog.by_key(key)
        if entry is not None:
            out.append(
                drug_history(entry, doses_per_drug.get(key, []), sessions=sessions_per_drug[key])
            )
    return out
