"""Nurse API (JSON): open a session for an order, record its events, read it back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel

from ..access import Access, guard, need
from ..domain.session_events import SessionEvent
from ..read_models import SessionPage, SessionView
from ..usecases import records, sessions
from .deps import RuntimeDep

router = APIRouter(prefix="/sessions", tags=["sessions"])
STAFF = ("nurse", "clinician")
Opening = Annotated[
    Access,
    Depends(
        guard(need("Session", "c", contexts=("user",), roles=("nurse",)), interaction="create")
    ),
]
Charting = Annotated[
    Access,
    Depends(
        guard(need("Session", "u", contexts=("user",), roles=("nurse",)), interaction="update")
    ),
]
Reading = Annotated[Access, Depends(guard(need("Session", "r", roles=STAFF), interaction="read"))]
Listing = Annotated[
    Access, Depends(guard(need("Session", "rs", roles=STAFF), interaction="search"))
]


class NewSession(BaseModel):
    order_id: str


def as_utc(value: datetime | None) -> datetime | None:
    """Query times without an offset are read as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def view_response(view: SessionView, status_code: int = 200) -> Response:
    """The session as JSON, serialized once. (Returned as a model, FastAPI would dump it,
    validate the dump against ``response_model`` again and then serialize it: with a long
    timeline that cost more than recording the event.)"""
    return Response(view.model_dump_json(), status_code, media_type="application/json")


@router.post("", status_code=201, response_model=SessionView)
async def create_session(body: NewSession, rt: RuntimeDep, _: Opening) -> Response:
    """Open a scheduled session for a cached, active infusion order."""
    return view_response(await sessions.open_session(rt, body.order_id), 201)


@router.post("/{session_id}/events", status_code=201, response_model=SessionView)
async def add_event(
    session_id: str, event: Annotated[SessionEvent, Body()], rt: RuntimeDep, _: Charting
) -> Response:
    """Record one event (``type`` says which); 409 if the session's state does not allow it."""
    return view_response(await sessions.record_event(rt, session_id, event), 201)


@router.get("/{session_id}", response_model=SessionView)
async def read_session(session_id: str, rt: RuntimeDep, access: Reading) -> Response:
    """The session, its timeline, and the status of its write-back to the EHR."""
    return view_response(await sessions.read_session(rt, session_id, access.compartment))


@router.get("", response_model=SessionPage)
async def read_sessions(
    rt: RuntimeDep,
    access: Listing,
    patient: Annotated[str | None, Query(description="Patient reference or id")] = None,
    state: Annotated[str | None, Query(description="Session state, e.g. discharged")] = None,
    drug: Annotated[str | None, Query(description="Catalog key, e.g. ocrelizumab")] = None,
    since: Annotated[datetime | None, Query(description="Started at or after")] = None,
    until: Annotated[datetime | None, Query(description="Started before")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Sessions, newest first."""
    filters = records.SessionFilters(
        patient, state, drug, as_utc(since), as_utc(until), offset, limit
    )
    return await records.session_page(rt, filters, access.compartment)
