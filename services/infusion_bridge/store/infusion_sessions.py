"""Queries and writes for infusion sessions. Callers own the transaction (no commit here).

Everything returned is a read model (:class:`SessionRecord`), never a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from ..domain.history import dose_of
from ..domain.orders import Quantity
from ..domain.sessions import TERMINAL, InfusionSession, RecordedEvent
from ..read_models import SessionRecord, TimelineItem
from .fast_insert import FastInsert
from .tables import SessionEventRow, SessionRow

_INSERT_EVENTS = FastInsert(SessionEventRow.__table__)  # type: ignore[attr-defined]


class ConcurrentUpdate(Exception):
    """Someone else changed the session between our read and our write."""


def record_of(
    row: Any,
    *,
    events: Sequence[Mapping[str, Any]] | None = None,
    infusion: InfusionSession | None = None,
) -> SessionRecord:
    """The read model of a ``sessions`` row (ORM object or Core row); with ``events``
    (its ``session_events``, in order), the timeline too."""
    dose = (
        Quantity(value=row.dose_value, unit=row.dose_unit)
        if row.dose_value is not None and row.dose_unit
        else None
    )
    return SessionRecord(
        id=row.id,
        order_id=row.order_id,
        patient=row.patient,
        drug_key=row.drug_key,
        state=row.state,
        version=row.version,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        utc_offset_minutes=row.utc_offset_minutes,
        given_at=row.given_at,
        dose=dose,
        infusion=(
            InfusionSession.model_validate(
                {**row.session_json, "state": row.state, "events": events}
            )
            if events is not None
            else infusion
        ),
    )


class SessionCache:
    """Sessions (with their timelines) as this process last committed them, by id: an event
    recorded on a session at that same version need not read and parse its whole timeline
    again, nor build its view's timeline items again. Only what was committed goes in
    (:meth:`put` after the commit); a session at another version in the database (another
    process wrote) is read in full."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._by_id: dict[str, tuple[SessionRecord, tuple[TimelineItem, ...]]] = {}

    def get(self, session_id: str) -> SessionRecord | None:
        found = self._by_id.get(session_id)
        return found[0] if found is not None else None

    def timeline(self, session_id: str) -> tuple[TimelineItem, ...]:
        """The view's timeline items of the remembered version (a prefix of any later one:
        events are only ever appended)."""
        found = self._by_id.get(session_id)
        return found[1] if found is not None else ()

    def put(self, record: SessionRecord, timeline: Sequence[TimelineItem] = ()) -> None:
        if record.infusion is None:
            return
        self._by_id.pop(record.id, None)
        if len(self._by_id) >= self._size:
            del self._by_id[next(iter(self._by_id))]
        self._by_id[record.id] = (record, tuple(timeline))


def get_infusion_session(
    db: Session, session_id: str, cache: SessionCache | None = None
) -> SessionRecord | None:
    """One session with its timeline (its event rows, in order; from ``cache`` when it holds
    the session at the version the database has)."""
    conn = db.connection()  # Core, statements built once: every recorded event reads this
    row = conn.execute(_SELECT_SESSION, {"key": session_id}).first()
    if row is None:
        return None
    known = cache.get(session_id) if cache is not None else None
    if known is not None and known.version == row.version:
        return record_of(row, infusion=known.infusion)
    events = conn.execute(_SELECT_EVENTS, {"key": session_id}).scalars().all()
    return record_of(row, events=events)


_SESSION_ROWS: Table = SessionRow.__table__  # type: ignore[attr-defined]
_EVENT_ROWS: Table = SessionEventRow.__table__  # type: ignore[attr-defined]
_SELECT_SESSION = _SESSION_ROWS.select().where(_SESSION_ROWS.c.id == bindparam("key"))
_SELECT_EVENTS = (
    select(_EVENT_ROWS.c.event_json)
    .where(_EVENT_ROWS.c.session_id == bindparam("key"))
    .order_by(_EVENT_ROWS.c.seq)
)


def insert_session(db: Session, infusion: InfusionSession, *, now: datetime) -> SessionRecord:
    row = SessionRow(
        id=infusion.id,
        order_id=infusion.order_id,
        patient=infusion.patient,
        drug_key=infusion.drug_key,
        state=infusion.state.value,
        created_at=now,
        updated_at=now,
        session_json=infusion.model_dump(mode="json", exclude={"events"}),
    )
    db.add(row)
    db.flush()
    _append(db, infusion.id, infusion.events)
    return record_of(row, events=[e.model_dump(mode="json") for e in infusion.events])


def _append(db: Session, session_id: str, events: Sequence[RecordedEvent]) -> None:
    _INSERT_EVENTS(
        db,
        [
            {"session_id": session_id, "seq": e.seq, "event_json": e.model_dump(mode="json")}
            for e in events
        ],
    )


def save_session(
    db: Session,
    found: SessionRecord,
    infusion: InfusionSession,
    *,
    new_events: Sequence[RecordedEvent],
    now: datetime,
) -> SessionRecord:
    """Append ``new_events`` (the last of ``infusion``'s events) as rows and update the
    session's summary columns, if nobody else wrote since ``found`` was read; the session
    as saved. The events recorded before are neither read back nor rewritten here."""
    started = infusion.events[0].event.at if infusion.events else None
    ended = infusion.events[-1].event.at if infusion.state in TERMINAL and infusion.events else None
    dose = dose_of(infusion)
    offset = started.utcoffset() if started else None
    saved = replace(
        found,
        state=infusion.state.value,
        version=found.version + 1,
        started_at=started,
        utc_offset_minutes=int(offset.total_seconds() // 60) if offset is not None else None,
        ended_at=ended,
        given_at=dose.given_at if dose else None,
        dose=dose.dose if dose else None,
        infusion=infusion,
    )
    result = db.connection().execute(
        _UPDATE,
        {
            "key": infusion.id,
            "expected": found.version,
            "state": saved.state,
            "version": saved.version,
            "updated_at": now,
            "started_at": saved.started_at,
            "utc_offset_minutes": saved.utc_offset_minutes,
            "ended_at": saved.ended_at,
            "given_at": saved.given_at,
            "dose_value": saved.dose.value if saved.dose else None,
            "dose_unit": saved.dose.unit if saved.dose else None,
        },
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConcurrentUpdate(infusion.id)
    _append(db, infusion.id, new_events)
    return saved


_UPDATE = (
    _SESSION_ROWS.update()
    .where(_SESSION_ROWS.c.id == bindparam("key"), _SESSION_ROWS.c.version == bindparam("expected"))
    .values(
        {
            name: bindparam(name)
            for name in (
                "state",
                "version",
                "updated_at",
                "started_at",
                "utc_offset_minutes",
                "ended_at",
                "given_at",
                "dose_value",
                "dose_unit",
            )
        }
    )
)


def list_sessions(
    db: Session,
    *,
    patient: str | None = None,
    state: str | None = None,
    drug: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int | None = 50,
) -> tuple[int, list[SessionRecord]]:
    """Sessions matching the filters, newest first (by start, then creation).

    The timeline JSON is not loaded (``defer``): lists only need the summary columns.
    ``limit=None`` returns them all (a patient's history).
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
    total = db.exec(select(func.count()).select_from(query.subquery())).one()
    query = query.order_by(
        col(SessionRow.started_at).desc().nulls_last(),
        col(SessionRow.created_at).desc(),
        col(SessionRow.id).desc(),
    ).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return total, [record_of(r) for r in db.exec(query).all()]
