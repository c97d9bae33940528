"""The outbox: durable queue of session write-backs. Callers own the transaction.

Reads return read models (:class:`DeliveryView`, :class:`Claim`), never rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from ..read_models import DeliveryView
from .tables import OutboxRow


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


def view_of(row: OutboxRow) -> DeliveryView:
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


def due_ids(db: Session, *, now: datetime, limit: int) -> list[int]:
    """Deliveries to try now: pending and due, or delivering with an expired lease
    (the worker that held it died mid-delivery)."""
    query = (
        select(OutboxRow.id)
        .where(
            or_(
                (col(OutboxRow.status) == DeliveryStatus.PENDING)
                & (col(OutboxRow.next_attempt_at) <= now),
                (col(OutboxRow.status) == DeliveryStatus.DELIVERING)
                & (col(OutboxRow.lease_until) < now),
            )
        )
        .order_by(col(OutboxRow.next_attempt_at), col(OutboxRow.id))
        .limit(limit)
    )
    return [i for i in db.exec(query).all() if i is not None]


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
    return Claim(id=row_id, session_id=row.session_id, attempts=row.attempts, payload=row.payload)


def mark_delivered(db: Session, row_id: int, *, response: dict[str, Any], now: datetime) -> None:
    _set(
        db,
        row_id,
        status=DeliveryStatus.DELIVERED,
        response=response,
        delivered_at=now,
        lease_until=None,
        last_error=None,
        updated_at=now,
    )


def mark_retry(db: Session, row_id: int, *, error: str, at: datetime, now: datetime) -> None:
    _set(
        db,
        row_id,
        status=DeliveryStatus.PENDING,
        next_attempt_at=at,
        lease_until=None,
        last_error=error,
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
    """Send a dead (or waiting) delivery again now. Delivered ones are left alone."""
    row = db.get(OutboxRow, row_id)
    if row is None:
        return None
    if row.status not in (DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERING):
        row.status = DeliveryStatus.PENDING
        row.next_attempt_at = now
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
    rows = db.exec(
        select(OutboxRow).where(OutboxRow.session_id == session_id).order_by(col(OutboxRow.id))
    )
    return [view_of(r) for r in rows.all()]


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
