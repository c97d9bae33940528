"""Chair-side documentation: open an infusion session for an order, record its events
(queueing the write-back in the same transaction as the event that finishes it), read it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from anyio.to_thread import run_sync
from sqlalchemy.engine import Engine
from sqlmodel import Session

from fhir_mappings.local_resources import local_resources

from ..clock import utcnow
from ..domain.billing import SessionBilling, session_billing
from ..domain.catalog import DrugCatalog
from ..domain.errors import Conflict, DomainError, NotFound
from ..domain.order_rules import check_dose_unit
from ..domain.orders import OrderStatus
from ..domain.session_events import InfusionEnd, Premedication, SessionEvent, Stop
from ..domain.sessions import DELIVERED_STATES, InfusionSession, TransitionError, record
from ..read_models import OrderRecord, SessionRecord, SessionView, TimelineItem, patient_details
from ..runtime import Runtime
from ..store import audit, outbox
from ..store.db import transaction, write_transaction
from ..store.ehr_records import ehr_patient_details
from ..store.fhir_resources import session_resources, store_resources
from ..store.infusion_sessions import (
    ConcurrentUpdate,
    SessionCache,
    get_infusion_session,
    insert_session,
    save_session,
)
from ..store.orders import get_order
from .safety_gates import guard, observation_minutes
from .writeback import build_writeback


async def open_session(rt: Runtime, order_id: str) -> SessionView:
    """A scheduled session for a cached, active infusion order."""
    record = await run_sync(lambda: start_session(rt.engine, order_id, now=utcnow()))
    return SessionView.of(record, [])


def start_session(engine: Engine, order_id: str, *, now: datetime) -> SessionRecord:
    """Open the session in one transaction (also used directly by tests and benchmarks)."""
    with write_transaction(engine) as db:
        found = get_order(db, order_id)
        if found is None or found.deleted:
            raise NotFound(f"order {order_id} is not in the cache", "order_id")
        order = found.order
        if order.role != "infusion":
            raise DomainError(f"order {order_id} is a premedication order", "order_id")
        if order.status is not OrderStatus.ACTIVE:
            raise Conflict(f"order {order_id} is {order.status.value}, not active", "order_id")
        infusion = InfusionSession(
            id=uuid.uuid4().hex,
            order_id=order.id,
            patient=order.patient,
            drug_key=order.drug.key,
            created_at=now,
        )
        audit.note("Session", infusion.id, infusion.patient)
        return insert_session(db, infusion, now=now)


async def record_event(rt: Runtime, session_id: str, event: SessionEvent) -> SessionView:
    """Append one event and return the session as it is now (read in the same transaction,
    from what was just written); wakes the delivery worker when the event finished the
    session (its write-back was queued)."""
    now = utcnow()

    def write(db: Session) -> tuple[bool, SessionRecord, SessionView]:
        queued, saved = apply_event(
            db,
            session_id,
            event,
            catalog=rt.catalog,
            identifier_system=rt.settings.identifier_system,
            now=now,
            cache=rt.sessions,
        )
        known = rt.sessions.timeline(session_id)
        return queued, saved, session_view(db, saved, rt.catalog, known)

    queued, saved, view = await rt.writes.run(write)
    rt.sessions.put(saved, view.timeline)  # committed
    if queued:
        rt.wake_delivery()
    return view


def append_event(
    engine: Engine,
    session_id: str,
    event: SessionEvent,
    *,
    catalog: DrugCatalog,
    identifier_system: str,
    now: datetime,
) -> bool:
    """:func:`apply_event` in a transaction of its own (tests and benchmarks call it)."""
    with write_transaction(engine) as db:
        queued, _ = apply_event(
            db, session_id, event, catalog=catalog, identifier_system=identifier_system, now=now
        )
        return queued


def apply_event(
    db: Session,
    session_id: str,
    event: SessionEvent,
    *,
    catalog: DrugCatalog,
    identifier_system: str,
    now: datetime,
    cache: SessionCache | None = None,
) -> tuple[bool, SessionRecord]:
    """Append one event in the caller's write transaction; whether a write-back was queued,
    and the session as saved.

    The event that finishes a session also, in the same transaction, builds the write-back
    Bundle once, queues it in the outbox, and keeps its resources for the ``/fhir`` reads.
    """
    found = get_infusion_session(db, session_id, cache)
    if found is None or found.infusion is None:
        raise NotFound(f"session {session_id} does not exist", "session_id")
    current = found.infusion
    audit.note("Session", session_id, current.patient)
    drug = catalog.by_key(current.drug_key)
    _check_drugs(event, current, catalog)
    try:
        updated = record(
            current,
            event,
            event_id=uuid.uuid4().hex[:12],
            now=now,
            observation_minutes=observation_minutes(db, current, event, drug),
        )
    except TransitionError as exc:
        raise Conflict(str(exc), exc.element) from exc
    guard(db, current, event, catalog)
    try:
        saved = save_session(
            db,
            found,
            updated,
            new_events=updated.events[len(current.events) :],
            now=now,
        )
    except ConcurrentUpdate as exc:
        raise Conflict("the session changed meanwhile; reload and try again") from exc
    queued = updated.state in DELIVERED_STATES and current.state not in DELIVERED_STATES
    if queued:
        try:
            bundle = build_writeback(
                db, updated, catalog=catalog, identifier_system=identifier_system
            )
        except (ValueError, LookupError) as exc:
            raise DomainError(f"the session cannot be written as FHIR: {exc}") from exc
        outbox.enqueue(db, session_id, payload=bundle, now=now)
        store_resources(db, session_id, updated.patient, local_resources(bundle), now=now)
    return queued, saved


async def read_session(rt: Runtime, session_id: str, compartment: str | None = None) -> SessionView:
    """The full record: timeline, order, deliveries, the administrations sent to the EHR."""

    def load() -> SessionView:
        with transaction(rt.engine) as db:
            found = get_infusion_session(db, session_id)
            if found is None or (compartment is not None and found.patient != compartment):
                raise NotFound(f"session {session_id} does not exist", "session_id")
            audit.note("Session", session_id, found.patient)
            return session_view(db, found, rt.catalog)

    return await run_sync(load)


def session_view(
    db: Session,
    found: SessionRecord,
    catalog: DrugCatalog,
    known: Sequence[TimelineItem] = (),
) -> SessionView:
    """What the API and the pages show of a session (its timeline loaded); ``known``: the
    timeline items of an earlier view, reused."""
    order = get_order(db, found.order_id)
    return SessionView.of(
        found,
        outbox.deliveries_for(db, found.id),
        order=order,
        administrations=session_resources(db, found.id, "MedicationAdministration"),
        catalog=catalog,
        patient=patient_details(
            found.patient,
            ehr_patient_details(db, found.patient),
            [order] if order is not None else [],
        ),
        billing=_billing(found, order, catalog),
        known=known,
    )


def _billing(
    found: SessionRecord, order: OrderRecord | None, catalog: DrugCatalog
) -> SessionBilling | None:
    if found.infusion is None or found.state not in {s.value for s in DELIVERED_STATES}:
        return None
    bsa = order.order.body_surface_area_m2 if order is not None else None
    return session_billing(found.infusion, catalog.by_key(found.drug_key), bsa_m2=bsa)


def _check_drugs(event: SessionEvent, current: InfusionSession, catalog: DrugCatalog) -> None:
    """The drug of a premedication is a known premedication; recorded doses are in a unit
    that fits the drug (the same rule as for orders)."""
    violation = None
    if isinstance(event, Premedication):
        entry = catalog.by_code(event.drug)
        if entry is None or entry.drug_class == "infusion":
            raise DomainError(f"{event.drug!r} is not a known premedication", "drug")
        violation = check_dose_unit(entry, event.dose.unit, "dose.unit")
    if isinstance(event, InfusionEnd | Stop):
        entry = catalog.by_key(current.drug_key)
        if entry is not None:
            violation = check_dose_unit(entry, event.dose_given.unit, "dose_given.unit")
    if violation is not None:
        raise DomainError.because(violation.code, violation.message, violation.element)
