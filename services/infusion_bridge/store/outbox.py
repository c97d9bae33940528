"""The outbox: durable queue of session write-backs. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from .tables import OutboxRow


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    DEAD = "dead"


def enqueue(
    session: Session, session_id: str, *, payload: dict[str, Any], now: datetime
) -> OutboxRow:
    row = OutboxRow(
        session_id=session_id,
        payload=payload,
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def due_ids(session: Session, *, now: datetime, limit: int) -> list[int]:
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
    return [i for i in session.exec(query).all() if i is not None]


def claim(session: Session, row_id: int, *, now: datetime, lease: timedelta) -> OutboxRow | None:
    """Take one delivery for this worker; None if another worker got it first."""
    result = session.execute(
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
    return session.get(OutboxRow, row_id, populate_existing=True)


def mark_delivered(
    session: Session, row_id: int, *, response: dict[str, Any], now: datetime
) -> None:
    _set(
        session,
        row_id,
        status=DeliveryStatus.DELIVERED,
        response=response,
        delivered_at=now,
        lease_until=None,
        last_error=None,
        updated_at=now,
    )


def mark_retry(session: Session, row_id: int, *, error: str, at: datetime, now: datetime) -> None:
    _set(
        session,
        row_id,
        status=DeliveryStatus.PENDING,
        next_attempt_at=at,
        lease_until=None,
        last_error=error,
        updated_at=now,
    )


def mark_dead(
    session: Session, row_id: int, *, error: str, outcome: dict[str, Any] | None, now: datetime
) -> None:
    _set(
        session,
        row_id,
        status=DeliveryStatus.DEAD,
        lease_until=None,
        last_error=error,
        outcome=outcome,
        updated_at=now,
    )


def requeue(session: Session, row_id: int, *, now: datetime) -> OutboxRow | None:
    """Send a dead (or waiting) delivery again now. Delivered ones are left alone."""
    row = session.get(OutboxRow, row_id)
    if row is None or row.status in (DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERING):
        return row
    row.status = DeliveryStatus.PENDING
    row.next_attempt_at = now
    row.updated_at = now
    session.add(row)
    return row


def list_deliveries(
    session: Session, *, status: str | None = None, offset: int = 0, limit: int = 50
) -> Sequence[OutboxRow]:
    query = select(OutboxRow)
    if status:
        query = query.where(OutboxRow.status == status)
    return session.exec(query.order_by(col(OutboxRow.id).desc()).offset(offset).limit(limit)).all()


def deliveries_for(session: Session, session_id: str) -> Sequence[OutboxRow]:
    return session.exec(
        select(OutboxRow).where(OutboxRow.session_id == session_id).order_by(col(OutboxRow.id))
    ).all()


def _set(session: Session, row_id: int, **values: Any) -> None:
    session.execute(update(OutboxRow).where(col(OutboxRow.id) == row_id).values(**values))


def statuses_by_session(session: Session, session_ids: list[str]) -> dict[str, list[str]]:
    """Delivery statuses per session (oldest first), for many sessions in one query."""
    out: dict[str, list[str]] = {sid: [] for sid in session_ids}
    if not session_ids:
        return out
    query = (
        select(OutboxRow.session_id, OutboxRow.status)
        .where(col(OutboxRow.session_id).in_(session_ids))
        .order_by(col(OutboxRow.id))
    )
    for sid, status in session.exec(query).all():
        out[sid].append(status)
    return out
