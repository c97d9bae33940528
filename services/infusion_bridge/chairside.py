"""Chair-side documentation: open a session for an order, record its events, and queue
the write-back in the same transaction as the event that completes it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.engine import Engine

from fhir_mappings.local_resources import local_resources

from .delivery.bundle import build_session_bundle
from .domain.catalog import DrugCatalog
from .domain.errors import Conflict, DomainError, NotFound
from .domain.orders import InfusionOrder, OrderStatus
from .domain.sessions import (
    DELIVERED_STATES,
    InfusionEnd,
    InfusionSession,
    Premedication,
    SessionEvent,
    Stop,
    TransitionError,
    record,
)
from .store import outbox
from .store.db import write_scope
from .store.fhir_resources import store_resources
from .store.orders import get_order
from .store.sessions import (
    ConcurrentUpdate,
    get_session_row,
    insert_session,
    load,
    save_session,
)
from .store.tables import SessionRow


def start_session(engine: Engine, order_id: str, *, now: datetime) -> SessionRow:
    """A scheduled session for an active infusion order."""
    with write_scope(engine) as session:
        row = get_order(session, order_id)
        if row is None or row.deleted:
            raise NotFound(f"order {order_id} is not in the cache", "order_id")
        order = InfusionOrder.model_validate(row.order_json)
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
        return insert_session(session, infusion, now=now)


def record_event(
    engine: Engine,
    session_id: str,
    event: SessionEvent,
    *,
    catalog: DrugCatalog,
    identifier_system: str,
    now: datetime,
) -> bool:
    """Append one event; returns whether a write-back was queued.

    The event that finishes a session also, in the same transaction, builds the FHIR
    Bundle once, queues it in the outbox, and keeps its resources for the ``/fhir`` reads.
    """
    with write_scope(engine) as session:
        row = get_session_row(session, session_id)
        if row is None:
            raise NotFound(f"session {session_id} does not exist", "session_id")
        current = load(row)
        drug = catalog.by_key(current.drug_key)
        _check_drugs(event, current, catalog)
        try:
            updated = record(
                current,
                event,
                event_id=uuid.uuid4().hex[:12],
                now=now,
                observation_minutes=drug.observation_minutes if drug else 0,
            )
        except TransitionError as exc:
            raise Conflict(str(exc), exc.element) from exc
        try:
            save_session(session, updated, expected_version=row.version, now=now)
        except ConcurrentUpdate as exc:
            raise Conflict("the session changed meanwhile; reload and try again") from exc
        queued = updated.state in DELIVERED_STATES and current.state not in DELIVERED_STATES
        if queued:
            try:
                bundle = build_session_bundle(
                    session, updated, catalog=catalog, identifier_system=identifier_system
                )
            except (ValueError, LookupError) as exc:
                raise DomainError(f"the session cannot be written as FHIR: {exc}") from exc
            outbox.enqueue(session, session_id, payload=bundle, now=now)
            store_resources(session, session_id, updated.patient, local_resources(bundle))
        return queued


def _check_drugs(event: SessionEvent, current: InfusionSession, catalog: DrugCatalog) -> None:
    if isinstance(event, Premedication):
        entry = catalog.by_key(event.drug) or catalog.by_rxnorm(event.drug)
        if entry is None or entry.drug_class == "infusion":
            raise DomainError(f"{event.drug!r} is not a known premedication", "drug")
        if event.dose.unit not in entry.dose_units:
            raise DomainError(
                f"{entry.name} doses are in {', '.join(entry.dose_units)}, not {event.dose.unit}",
                "dose.unit",
            )
    if isinstance(event, InfusionEnd | Stop):
        entry = catalog.by_key(current.drug_key)
        if entry is not None and event.dose_given.unit not in entry.dose_units:
            raise DomainError(
                f"{entry.name} doses are in {', '.join(entry.dose_units)}, "
                f"not {event.dose_given.unit}",
                "dose_given.unit",
            )
