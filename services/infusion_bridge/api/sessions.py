"""Nurse API (JSON): open a session for an order, record its events, read it back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..chairside import record_event, start_session
from ..clock import utcnow
from ..domain.errors import NotFound
from ..domain.orders import patient_reference
from ..domain.sessions import SessionEvent
from ..store.db import session_scope
from ..store.fhir_resources import session_resources
from ..store.orders import get_order
from ..store.outbox import deliveries_for, statuses_by_session
from ..store.sessions import get_session_row, list_sessions, load
from ..store.tables import OrderRow, OutboxRow, SessionRow
from .orders import OrderView, to_view
from .state import app_state

router = APIRouter(prefix="/sessions", tags=["sessions"])


class NewSession(BaseModel):
    order_id: str


class TimelineItem(BaseModel):
    seq: int
    id: str
    recorded_at: datetime
    event: SessionEvent


class DeliveryView(BaseModel):
    id: int
    session_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    outcome: dict[str, Any] | None
    response: dict[str, Any] | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: OutboxRow) -> DeliveryView:
        return cls.model_validate(row, from_attributes=True)


class SessionView(BaseModel):
    """The full record of a session, as nurses and clinicians read it."""

    id: str
    order_id: str
    patient: str
    drug: str
    state: str
    version: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    timeline: list[TimelineItem]
    deliveries: list[DeliveryView]
    order: OrderView | None = None
    vitals: list[TimelineItem] = []
    premedications: list[TimelineItem] = []
    reactions: list[TimelineItem] = []
    documented_by: list[str] = []
    administrations: list[dict[str, Any]] = []
    """The MedicationAdministrations sent to the EHR (FHIR JSON), once the session is finished."""


class SessionSummary(BaseModel):
    id: str
    order_id: str
    patient: str
    drug: str
    state: str
    started_at: datetime | None
    ended_at: datetime | None
    delivery: str | None = None
    """Status of the latest write-back to the EHR (none for open or cancelled sessions)."""


class SessionPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[SessionSummary]


def as_utc(value: datetime | None) -> datetime | None:
    """Query times without an offset are read as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def summary(row: SessionRow, deliveries: dict[str, list[str]]) -> SessionSummary:
    return SessionSummary(
        id=row.id,
        order_id=row.order_id,
        patient=row.patient,
        drug=row.drug_key,
        state=row.state,
        started_at=row.started_at,
        ended_at=row.ended_at,
        delivery=deliveries[row.id][-1] if deliveries.get(row.id) else None,
    )


def session_view(
    row: SessionRow,
    deliveries: list[OutboxRow],
    *,
    order: OrderRow | None = None,
    administrations: list[dict[str, Any]] | None = None,
) -> SessionView:
    infusion = load(row)
    timeline = [TimelineItem.model_validate(e.model_dump()) for e in infusion.events]

    def of(*kinds: str) -> list[TimelineItem]:
        return [t for t in timeline if t.event.type in kinds]

    return SessionView(
        id=row.id,
        order_id=row.order_id,
        patient=row.patient,
        drug=row.drug_key,
        state=row.state,
        version=row.version,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        timeline=timeline,
        deliveries=[DeliveryView.of(d) for d in deliveries],
        order=to_view(order) if order is not None else None,
        vitals=of("vitals"),
        premedications=of("premedication"),
        reactions=of("reaction"),
        documented_by=sorted({t.event.by for t in timeline if t.event.by}),
        administrations=administrations or [],
    )


def _load_view(request: Request, session_id: str) -> SessionView:
    with session_scope(app_state(request).engine) as session:
        row = get_session_row(session, session_id)
        if row is None:
            raise NotFound(f"session {session_id} does not exist", "session_id")
        administrations = [
            r.resource_json
            for r in session_resources(session, session_id)
            if r.resource_type == "MedicationAdministration"
        ]
        return session_view(
            row,
            list(deliveries_for(session, session_id)),
            order=get_order(session, row.order_id),
            administrations=administrations,
        )


@router.post("", status_code=201, response_model=SessionView)
async def create_session(request: Request, body: NewSession) -> Any:
    """Open a scheduled session for a cached, active infusion order."""
    state = app_state(request)
    row = await run_in_threadpool(start_session, state.engine, body.order_id, now=utcnow())
    return session_view(row, [])


@router.post("/{session_id}/events", status_code=201, response_model=SessionView)
async def add_event(
    request: Request, session_id: str, event: Annotated[SessionEvent, Body()]
) -> Any:
    """Record one event (``type`` says which); 409 if the session's state does not allow it."""
    state = app_state(request)
    queued = await run_in_threadpool(
        lambda: record_event(
            state.engine,
            session_id,
            event,
            catalog=state.catalog,
            identifier_system=state.settings.identifier_system,
            now=utcnow(),
        )
    )
    if queued and state.worker is not None:
        state.worker.notify()
    return await run_in_threadpool(_load_view, request, session_id)


@router.get("/{session_id}", response_model=SessionView)
async def read_session(request: Request, session_id: str) -> Any:
    """The session, its timeline, and the status of its write-back to the EHR."""
    return await run_in_threadpool(_load_view, request, session_id)


@router.get("", response_model=SessionPage)
async def read_sessions(
    request: Request,
    patient: Annotated[str | None, Query(description="Patient reference or id")] = None,
    state: Annotated[str | None, Query(description="Session state, e.g. discharged")] = None,
    drug: Annotated[str | None, Query(description="Catalog key, e.g. ocrelizumab")] = None,
    since: Annotated[datetime | None, Query(description="Started at or after")] = None,
    until: Annotated[datetime | None, Query(description="Started before")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Sessions, newest first."""
    engine = app_state(request).engine
    patient = patient_reference(patient) if patient else None
    since, until = (as_utc(t) for t in (since, until))

    def load_page() -> SessionPage:
        with session_scope(engine) as session:
            total, rows = list_sessions(
                session,
                patient=patient,
                state=state,
                drug=drug,
                since=since,
                until=until,
                offset=offset,
                limit=limit,
            )
            statuses = statuses_by_session(session, [r.id for r in rows])
            return SessionPage(
                total=total,
                offset=offset,
                limit=limit,
                items=[summary(r, statuses) for r in rows],
            )

    return await run_in_threadpool(load_page)
