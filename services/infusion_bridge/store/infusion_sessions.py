"""Queries and writes for sessions. Callers own the transaction (no commit here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from ..domain.history import dose_of
from ..domain.sessions import TERMINAL, InfusionSession
from .tables import SessionRow


class ConcurrentUpdate(Exception):
    """Someone else changed the session between our read and our write."""


def get_session_row(session: Session, session_id: str) -> SessionRow | None:
    return session.get(SessionRow, session_id)


def load(row: SessionRow) -> InfusionSession:
    return InfusionSession.model_validate(row.session_json)


def insert_session(session: Session, infusion: InfusionSession, *, now: datetime) -> SessionRow:
    row = SessionRow(
        id=infusion.id,
        order_id=infusion.order_id,
        patient=infusion.patient,
        drug_key=infusion.drug_key,
        state=infusion.state.value,
        created_at=now,
        updated_at=now,
        session_json=infusion.model_dump(mode="json"),
    )
    session.add(row)
    session.flush()
    return row


def save_session(
    session: Session, infusion: InfusionSession, *, expected_version: int, now: datetime
) -> None:
    """Write the new timeline if nobody else wrote since ``expected_version``."""
    started = infusion.events[0].event.at if infusion.events else None
    ended = infusion.events[-1].event.at if infusion.state in TERMINAL and infusion.events else None
    dose = dose_of(infusion)
    offset = started.utcoffset() if started else None
    result = session.execute(
        update(SessionRow)
        .where(col(SessionRow.id) == infusion.id, col(SessionRow.version) == expected_version)
        .values(
            state=infusion.state.value,
            version=expected_version + 1,
            updated_at=now,
            started_at=started,
            utc_offset_minutes=int(offset.total_seconds() // 60) if offset is not None else None,
            ended_at=ended,
            given_at=dose.given_at if dose else None,
            dose_value=dose.dose.value if dose else None,
            dose_unit=dose.dose.unit if dose else None,
            session_json=infusion.model_dump(mode="json"),
        )
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConcurrentUpdate(infusion.id)


def list_sessions(
    session: Session,
    *,
    patient: str | None = None,
    state: str | None = None,
    drug: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, Sequence[SessionRow]]:
    """Sessions matching the filters, newest first (by start, then creation).

    The timeline JSON is not loaded (``defer``): lists only need the summary columns.
    """
    query = select(SessionRow).options(defer(SessionRow.session_json))  # type: ignore[arg-type]
    if patient:
        query = query.where(SessionRow.patient == patient)
    if state:
        query = query.where(SessionRow.state == state)
    if drug:
        query = query.where(SessionRow.drug_key == drug)
    if since:
        query = query.where(col(SessionRow.started_at) >= since)
    if until:
        query = query.where(col(SessionRow.started_at) < until)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(
            col(SessionRow.started_at).desc().nulls_last(),
            col(SessionRow.created_at).desc(),
            col(SessionRow.id).desc(),
        )
        .offset(offset)
        .limit(limit)
    ).all()
    return total, rows
