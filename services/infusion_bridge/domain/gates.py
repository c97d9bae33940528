"""Safety gates the labels require before and during an infusion (pure).

Checked when the infusion starts and when its rate goes up:

    touch-checklist  natalizumab: a passed TOUCH checklist in this session (domain.md §9)
    premedication    the catalog's required premedications, each a listed drug in its dose
                     range, given the right number of minutes before the start (domain.md §1.4)
    lvef             mitoxantrone: an LVEF result dated before the dose (and after the previous
                     dose), not below 50% (domain.md §1.5)
    rate             no rate above the label's protocol for the minutes infused so far
                     (pauses excluded; the most permissive protocol for the ordered dose)

A failed gate refuses the event unless the session holds a ``gate-override`` for that gate
(who and why, kept and written back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .catalog import DrugCatalog, DrugEntry, PremedicationRequirement
from .ehr_records import BodyMeasurement
from .orders import Quantity
from .session_events import (
    GateName,
    GateOverride,
    InfusionStart,
    Pause,
    Premedication,
    RateChange,
    Reaction,
    Resume,
    SessionEvent,
    TouchChecklist,
)
from .sessions import InfusionSession, rate_from

LVEF_MINIMUM_PERCENT = 50.0
"""Do not start mitoxantrone below this LVEF (domain.md §1.5)."""


@dataclass(frozen=True)
class GateContext:
    """What the gates need beyond the session: the drug, the ordered dose, where the patient
    is in the regimen, and the EHR's LVEF results."""

    catalog: DrugCatalog
    drug: DrugEntry
    order_dose: Quantity
    infusion_number: int
    """This infusion's number for the patient (prior doses from here and the EHR, + 1)."""
    course_day: int | None = None
    """Day of the current course (course drugs only)."""
    last_dose_at: datetime | None = None
    lvef: tuple[BodyMeasurement, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class GateFailure:
    gate: GateName
    message: str
    element: str


def check_gates(
    session: InfusionSession, event: SessionEvent, ctx: GateContext
) -> list[GateFailure]:
    """The gates ``event`` fails and the session has not overridden."""
    failures: list[GateFailure] = []
    if isinstance(event, InfusionStart):
        failures += _touch(session, ctx)
        failures += _premedications(session, event, ctx)
        failures += _lvef(event, ctx)
    rate = rate_from(event)
    if rate is not None and isinstance(event, InfusionStart | RateChange | Resume | Reaction):
        failures += _rate(session, event, rate, ctx)
    overridden = {
        i.event.gate for i in session.all(GateOverride) if isinstance(i.event, GateOverride)
    }
    return [f for f in failures if f.gate not in overridden]


def _touch(session: InfusionSession, ctx: GateContext) -> list[GateFailure]:
    if "touch-checklist" not in ctx.drug.gates:
        return []
    found = session.last(TouchChecklist)
    if found is None or not isinstance(found.event, TouchChecklist):
        return [
            GateFailure(
                "touch-checklist",
                f"{ctx.drug.name} needs the TOUCH pre-infusion checklist before every infusion; "
                "none is recorded for this session",
                "type",
            )
        ]
    if not found.event.passed:
        why = (
            "the patient is not authorized" if not found.event.authorized else "an answer is 'yes'"
        )
        return [
            GateFailure(
                "touch-checklist",
                f"the TOUCH checklist says do not infuse ({why}): contact the prescriber",
                "type",
            )
        ]
    return []


def _premedications(
    session: InfusionSession, start: InfusionStart, ctx: GateContext
) -> list[GateFailure]:
    failures = []
    for req in ctx.drug.premedications_required:
        if req.course_days and (ctx.course_day is None or ctx.course_day not in req.course_days):
            continue
        if not _given(session, start, req, ctx.catalog):
            options = " or ".join(
                f"{o.drug} {o.dose.low:g}-{o.dose.high:g} {o.dose.unit}" for o in req.options
            )
            failures.append(
                GateFailure(
                    "premedication",
                    f"{ctx.drug.name} needs a {req.name} premedication ({options}) given "
                    f"{req.minutes_before.min:g}-{req.minutes_before.max:g} minutes before the "
                    "infusion starts; none is recorded",
                    "at",
                )
            )
    return failures


def _given(
    session: InfusionSession,
    start: InfusionStart,
    req: PremedicationRequirement,
    catalog: DrugCatalog,
) -> bool:
    for item in session.all(Premedication):
        premed = item.event
        assert isinstance(premed, Premedication)
        entry = catalog.by_code(premed.drug)
        minutes = (start.at - premed.at).total_seconds() / 60
        for option in req.options:
            if (
                entry is not None
                and entry.key == option.drug
                and premed.dose.unit == option.dose.unit
                and option.dose.low <= premed.dose.value <= option.dose.high
                and req.minutes_before.min <= minutes <= req.minutes_before.max
            ):
                return True
    return False


def _lvef(start: InfusionStart, ctx: GateContext) -> list[GateFailure]:
    if "lvef" not in ctx.drug.gates:
        return []
    results = [
        m
        for m in ctx.lvef
        if m.kind == "lvef"
        and m.effective <= start.at
        and (ctx.last_dose_at is None or m.effective > ctx.last_dose_at)
    ]
    if not results:
        since = f" since the last dose ({ctx.last_dose_at.date()})" if ctx.last_dose_at else ""
        return [
            GateFailure(
                "lvef",
                f"{ctx.drug.name} needs an LVEF result dated before every dose; none{since} "
                "is known (pull the patient's history from the EHR)",
                "at",
            )
        ]
    newest = max(results, key=lambda m: m.effective)
    if newest.value < LVEF_MINIMUM_PERCENT:
        return [
            GateFailure(
                "lvef",
                f"LVEF {newest.value:g}% ({newest.reference}, {newest.effective.date()}) is "
                f"below {LVEF_MINIMUM_PERCENT:g}%: do not give {ctx.drug.name}",
                "at",
            )
        ]
    return []


def _rate(
    session: InfusionSession, event: SessionEvent, rate: float, ctx: GateContext
) -> list[GateFailure]:
    serious = any(
        isinstance(i.event, Reaction) and i.event.severity in ("severe", "life-threatening")
        for i in session.events
    )
    protocols = [
        p
        for p in ctx.drug.rate_protocols
        if p.dose.unit == ctx.order_dose.unit
        and abs(p.dose.value - ctx.order_dose.value) < 0.5
        and not (p.no_prior_serious_reaction and serious)
    ]
    if not protocols:
        return []
    minutes = infused_minutes(session, event.at)
    allowed = max(p.max_rate(minutes) for p in protocols)
    if rate <= allowed:
        return []
    return [
        GateFailure(
            "rate",
            f"{rate:g} mL/h is above the label's protocol for {ctx.order_dose.value:g} "
            f"{ctx.order_dose.unit} after {minutes:.0f} minutes of infusion (at most "
            f"{allowed:g} mL/h)",
            "rate_ml_per_h",
        )
    ]


def infused_minutes(session: InfusionSession, until: datetime) -> float:
    """Minutes the drug has been running by ``until`` (pauses excluded)."""
    total = 0.0
    running_since: datetime | None = None
    for item in session.events:
        e = item.event
        if e.at > until:
            break
        if isinstance(e, InfusionStart) or (isinstance(e, Resume) and running_since is None):
            running_since = e.at
        elif running_since is not None and (
            isinstance(e, Pause) or (isinstance(e, Reaction) and e.action in ("paused", "stopped"))
        ):
            total += (e.at - running_since).total_seconds() / 60
            running_since = None
    if running_since is not None:
        total += (until - running_since).total_seconds() / 60
    return total
