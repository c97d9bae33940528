"""The audit trail: one record per request that touches patient data, allowed or refused.

The HTTP edge opens an :class:`AuditEntry` for the request (:func:`begin`); use cases name
what they touched (:func:`note`); :func:`~.db.write_transaction` inserts the entry in the
same transaction as the data it describes; a request that wrote nothing (a read, a refusal,
a failure) gets its record after the handler, from :func:`write_if_pending`. Records are
only ever inserted: no function here updates or deletes one, and the database refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..domain.audit import INTERACTION_ACTION, AuditRecord, outcome_of
from .fast_insert import FastInsert
from .tables import AuditRow


@dataclass
class AuditEntry:
    """What one request did to patient data, filled in as it goes."""

    interaction: str
    method: str
    route: str
    request_id: str
    source: str | None
    resource_type: str | None = None
    subject: str | None = None
    who: str | None = None
    client_id: str | None = None
    roles: tuple[str, ...] = ()
    patient: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    persisted: bool = False


_current: ContextVar[AuditEntry | None] = ContextVar("infusion_audit", default=None)


def begin(entry: AuditEntry) -> None:
    """Make ``entry`` the audit record of the running request (and its worker threads)."""
    _current.set(entry)


def current() -> AuditEntry | None:
    return _current.get()


def note(resource_type: str, resource_id: str | None, patient: str | None) -> None:
    """Name one resource the running request read or wrote (no-op outside a request)."""
    entry = _current.get()
    if entry is None:
        return
    if len(entry.entities) < 100:  # a search lists what it returned, up to a page
        entry.entities.append({"type": resource_type, "id": resource_id, "patient": patient})
    if patient and entry.patient is None:
        entry.patient = patient


def insert(db: Session, entry: AuditEntry, *, status: int | None, now: datetime) -> None:
    insert_many(db, [entry], status=status, now=now)


def insert_many(
    db: Session, entries: Sequence[AuditEntry], *, status: int | None, now: datetime
) -> None:
    """The records of several requests, in one statement (a group commit's)."""
    # Not through the ORM: every guarded request writes one, and the ORM's unit of work
    # (an AuditRow instance, a flush) costs several times the INSERT (see fast_insert).
    _INSERT(db, [_row(entry, status, now) for entry in entries])


def _row(entry: AuditEntry, status: int | None, now: datetime) -> dict[str, Any]:
    outcome = outcome_of(status)
    if entry.reason is not None and outcome == "0":  # refused, and sent to sign in (303)
        outcome = "4"
    return {
        "recorded": now,
        "action": INTERACTION_ACTION.get(entry.interaction, "E"),
        "interaction": entry.interaction,
        "outcome": outcome,
        "status": status,
        "subject": entry.subject,
        "who": entry.who,
        "client_id": entry.client_id,
        "roles": " ".join(sorted(entry.roles)),
        "resource_type": entry.resource_type,
        "patient": entry.patient,
        "entities": entry.entities,
        "method": entry.method,
        "route": entry.route,
        "request_id": entry.request_id,
        "source": entry.source,
        "reason": entry.reason,
    }


_INSERT = FastInsert(AuditRow.__table__)  # type: ignore[attr-defined]


def search(
    db: Session,
    *,
    patient: str | None = None,
    agent: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, list[AuditRecord]]:
    """Audit records, newest first."""
    query = select(AuditRow)
    if patient:
        query = query.where(AuditRow.patient == patient)
    if agent:
        query = query.where((AuditRow.subject == agent) | (AuditRow.who == agent))
    if since:
        query = query.where(col(AuditRow.recorded) >= since)
    if before:
        query = query.where(col(AuditRow.recorded) < before)
    total = db.exec(select(func.count()).select_from(query.subquery())).one()
    rows = db.exec(
        query.order_by(col(AuditRow.recorded).desc(), col(AuditRow.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return total, [_record(r) for r in rows]


def _record(row: AuditRow) -> AuditRecord:
    assert row.id is not None
    return AuditRecord(
        id=row.id,
        recorded=row.recorded,
        action=row.action,
        interaction=row.interaction,
        outcome=row.outcome,
        status=row.status,
        subject=row.subject,
        who=row.who,
        client_id=row.client_id,
        roles=tuple(row.roles.split()),
        resource_type=row.resource_type,
        patient=row.patient,
        entities=tuple(row.entities),
        method=row.method,
        route=row.route,
        request_id=row.request_id,
        source=row.source,
        reason=row.reason,
    )
