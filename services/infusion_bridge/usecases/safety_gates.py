"""The safety gates of one recorded event, in the event's write transaction: where the
patient is in the regimen (doses charted here and read from the EHR), the EHR's LVEF
results, then :func:`domain.gates.check_gates`. Also the observation time by infusion number."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from ..domain.catalog import DrugCatalog, DrugEntry
from ..domain.errors import Conflict
from ..domain.gates import GateContext, check_gates
from ..domain.history import Dose
from ..domain.session_events import (
    Discharge,
    InfusionStart,
    RateChange,
    Reaction,
    Resume,
    SessionEvent,
)
from ..domain.sessions import InfusionSession
from ..store.ehr_records import ehr_history_for
from ..store.infusion_sessions import list_sessions
from ..store.order_queries import body_surface_areas
from ..store.orders import get_order
from .records import all_doses

_GATED = (InfusionStart, RateChange, Resume, Reaction)


def observation_minutes(
    db: Session, session: InfusionSession, event: SessionEvent, drug: DrugEntry | None
) -> int:
    """The drug's post-infusion observation for this infusion (some labels: first N only)."""
    if drug is None:
        return 0
    if drug.observation_through_infusion is None or not isinstance(event, Discharge):
        return drug.observation_minutes
    return drug.observation_minutes_for(len(_prior_doses(db, session)) + 1)


def guard(db: Session, session: InfusionSession, event: SessionEvent, catalog: DrugCatalog) -> None:
    """``Conflict`` naming the gate when ``event`` fails a safety gate not overridden."""
    if not isinstance(event, _GATED):
        return
    drug = catalog.by_key(session.drug_key)
    order = get_order(db, session.order_id)
    if drug is None or order is None:
        return
    if not isinstance(event, InfusionStart) and not drug.rate_protocols:
        return
    prior = _prior_doses(db, session)
    ctx = GateContext(
        catalog=catalog,
        drug=drug,
        order_dose=order.order.dose,
        infusion_number=len(prior) + 1,
        course_day=_course_day(prior, event.at) if drug.course_days else None,
        last_dose_at=prior[-1].given_at if prior else None,
        lvef=tuple(m for m in ehr_history_for(db, session.patient).measurements if m.kind == "lvef")
        if "lvef" in drug.gates
        else (),
    )
    failures = check_gates(session, event, ctx)
    if failures:
        first = failures[0]
        raise Conflict(
            "; ".join(f"safety gate '{f.gate}': {f.message}" for f in failures)
            + " (record a gate-override with a reason to proceed anyway)",
            first.element,
        )


def _prior_doses(db: Session, session: InfusionSession) -> list[Dose]:
    """The patient's earlier doses of the session's drug (here and from the EHR), oldest first."""
    _, records = list_sessions(db, patient=session.patient, drug=session.drug_key, limit=None)
    records = [r for r in records if r.id != session.id]
    doses = all_doses(
        records,
        body_surface_areas(db, {r.order_id for r in records}),
        ehr_history_for(db, session.patient),
    ).get(session.drug_key, [])
    return sorted(doses, key=lambda d: d.given_at)


def _course_day(prior: list[Dose], at: datetime) -> int:
    """Day number within the current course: consecutive daily doses (gaps of up to 2 days)."""
    day = 1
    reference = at.date()
    for d in reversed(prior):
        current = d.given_at.date()
        if reference - current > timedelta(days=2):
            break
        day += 1
        reference = current
    return day
