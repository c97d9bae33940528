"""The outbox: durable queue of session write-backs. Callers own the transaction.

Reads return read models (:class:`DeliveryView`, :class:`Claim`), never rows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, bindparam, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from ..read_models import DeliveryView, OutboxStats
from .tables import OutboxRow, SessionRow


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class Claim:
    """A delivery a worker has taken: which attempt this is, and what to send."""

    id: int
    session_id: str
    attempts: int
    payload: dict[str, Any] | None
    failing_since: datetime | None = None


def view_of(row: Any) -> DeliveryView:
    return DeliveryView.model_validate(row, from_attributes=True)


def enqueue(db: Session, session_id: str, *, payload: dict[str, Any], now: datetime) -> int:
    row = OutboxRow(
        session_id=session_id,
        payload=payload,
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    db.flush()
    assert row.id is not None
    return row.id


def due_ids(db: Session, *, now: datetime, limit: int, exclude: Collection[int] = ()) -> list[int]:
    """Deliveries to try now, earliest due first: pending and due, or delivering with an
    expired lease (the worker that held it died mid-delivery).

    Deliveries of one patient go in order: a delivery is only offered once every earlier one
    of the same patient is delivered or dead (one waiting on a backoff holds the later ones
    back; other patients are not held up). ``exclude``: ids already in flight here.
    """
    earlier = aliased(OutboxRow)
    earlier_session = aliased(SessionRow)
    held_back = (
        select(col(earlier.id))
        .join(earlier_session, col(earlier_session.id) == col(earlier.session_id))
        .where(
            col(earlier_session.patient) == col(SessionRow.patient),
            col(earlier.id) < col(OutboxRow.id),
            col(earlier.status).in_([DeliveryStatus.PENDING, DeliveryStatus.DELIVERING]),
        )
        .exists()
    )
    query = (
        select(OutboxRow.id)
        .join(SessionRow, col(SessionRow.id) == col(OutboxRow.session_id))
        .where(
            or_(
                (col(OutboxRow.status) == DeliveryStatus.PENDING)
                & (col(OutboxRow.next_attempt_at) <= now),
                (col(OutboxRow.status) == DeliveryStatus.DELIVERING)
                & (col(OutboxRow.lease_until) < now),
            ),
            ~held_back,
        )
        .order_by(col(OutboxRow.next_attempt_at), col(OutboxRow.id))
        .limit(limit)
    )
    if exclude:
        query = query.where(col(OutboxRow.id).not_in(list(exclude)))
    return [i for i in db.exec(query).all() if i is not None]


def next_due_at(db: Session, *, now: datetime) -> datetime | None:
    """When the next pending delivery not yet due falls due (None if there is none)."""
    query = select(func.min(OutboxRow.next_attempt_at)).where(
        col(OutboxRow.status) == DeliveryStatus.PENDING, col(OutboxRow.next_attempt_at) > now
    )
    found: datetime | None = db.exec(query).one()
    return found


def waiting_on_backoff(db: Session, *, now: datetime) -> list[int]:
    """Pending deliveries that failed and wait for a later retry (not yet due)."""
    query = select(OutboxRow.id).where(
        col(OutboxRow.status) == DeliveryStatus.PENDING,
        col(OutboxRow.next_attempt_at) > now,
        col(OutboxRow.failing_since).is_not(None),
    )
    return [i for i in db.exec(query).all() if i is not None]


def reschedule(db: Session, when: dict[int, datetime], *, now: datetime) -> None:
    """Move the next attempt of these still-pending deliveries to the given times."""
    for row_id, at in when.items():
        db.execute(
            update(OutboxRow)
            .where(
                col(OutboxRow.id) == row_id,
                col(OutboxRow.status) == DeliveryStatus.PENDING,
                col(OutboxRow.next_attempt_at) > at,
            )
            .values(next_attempt_at=at, updated_at=now)
        )


def stats(db: Session, *, failing_before: datetime) -> OutboxStats:
    """Counts per status, the oldest undelivered delivery, how many fail since long."""
    counts = {
        str(status): int(n)
        for status, n in db.exec(
            select(OutboxRow.status, func.count()).group_by(col(OutboxRow.status))
        ).all()
    }
    waiting = col(OutboxRow.status).in_([DeliveryStatus.PENDING, DeliveryStatus.DELIVERING])
    oldest = db.exec(select(func.min(OutboxRow.created_at)).where(waiting)).one()
    failing_long = db.exec(
        select(func.count()).where(waiting, col(OutboxRow.failing_since) < failing_before)
    ).one()
    return OutboxStats(counts=counts, oldest_waiting_since=oldest, failing_long=int(failing_long))


def claim(db: Session, row_id: int, *, now: datetime, lease: timedelta) -> Claim | None:
    """Take one delivery for this worker; None if another worker got it first."""
    result = db.execute(
        update(OutboxRow)
        .where(
            col(OutboxRow.id) == row_id,
            or_(
                col(OutboxRow.status) == DeliveryStatus.PENDING,
                (col(OutboxRow.status) == DeliveryStatus.DELIVERING)
                & (col(OutboxRow.lease_until) < now),
            ),
        )
        .values(
            status=DeliveryStatus.DELIVERING,
            lease_until=now + lease,
            attempts=OutboxRow.attempts + 1,
            updated_at=now,
        )
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    row = db.get(OutboxRow, row_id, populate_existing=True)
    if row is None:
        return None
    return Claim(
        id=row_id,
        session_id=row.session_id,
        attempts=row.attempts,
        payload=row.payload,
        failing_since=row.failing_since,
    )


def mark_delivered(db: Session, row_id: int, *, response: dict[str, Any], now: datetime) -> None:
    _set(
        db,
        row_id,
        status=DeliveryStatus.DELIVERED,
        response=response,
        delivered_at=now,
        lease_until=None,
        last_error=None,
        failing_since=None,
        updated_at=now,
    )


def mark_retry(db: Session, row_id: int, *, error: str, at: datetime, now: datetime) -> None:
    """Try again at ``at``; the first failure of a run starts its ``failing_since``."""
    _set(
        db,
        row_id,
        status=DeliveryStatus.PENDING,
        next_attempt_at=at,
        lease_until=None,
        last_error=error,
        failing_since=func.coalesce(OutboxRow.failing_since, now),
        updated_at=now,
    )


def mark_dead(
    db: Session, row_id: int, *, error: str, outcome: dict[str, Any] | None, now: datetime
) -> None:
    _set(
        db,
        row_id,
        status=DeliveryStatus.DEAD,
        lease_until=None,
        last_error=error,
        outcome=outcome,
        updated_at=now,
    )


def requeue(db: Session, row_id: int, *, now: datetime) -> DeliveryView | None:
    """Send a dead (or waiting) delivery again now, with a fresh retry horizon. Delivered
    ones are left alone."""
    row = db.get(OutboxRow, row_id)
    if row is None:
        return None
    if row.status not in (DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERING):
        row.status = DeliveryStatus.PENDING
        row.next_attempt_at = now
        row.failing_since = None
        row.updated_at = now
        db.add(row)
        db.flush()
    return view_of(row)


def list_deliveries(
    db: Session, *, status: str | None = None, offset: int = 0, limit: int = 50
) -> list[DeliveryView]:
    query = select(OutboxRow)
    if status:
        query = query.where(OutboxRow.status == status)
    rows = db.exec(query.order_by(col(OutboxRow.id).desc()).offset(offset).limit(limit))
    return [view_of(r) for r in rows.all()]


def deliveries_for(db: Session, session_id: str) -> list[DeliveryView]:
    rows = db.connection().execute(_FOR_SESSION, {"key": session_id})  # read with every event
    return [view_of(r) for r in rows]


_OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]
_FOR_SESSION = (
    _OUTBOX.select().where(_OUTBOX.c.session_id == bindparam("key")).order_by(_OUTBOX.c.id)
)


def _set(db: Session, row_id: int, **values: Any) -> None:
    db.execute(update(OutboxRow).where(col(OutboxRow.id) == row_id).values(**values))


def statuses_by_session(db: Session, session_ids: list[str]) -> dict[str, list[str]]:
    """Delivery statuses per session (oldest first), for many sessions in one query."""
    out: dict[str, list[str]] = {sid: [] for sid in session_ids}
    if not session_ids:
        return out
    query = (
        select(OutboxRow.session_id, OutboxRow.status)
        .where(col(OutboxRow.session_id).in_(session_ids))
        .order_by(col(OutboxRow.id))
    )
    for sid, status in db.exec(query).all():
        out[sid].append(status)
    return out
