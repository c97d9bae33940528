"""Server-side web sessions of the clinician pages. Callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col

from .tables import WebSessionRow


@dataclass(frozen=True)
class WebSession:
    key: str
    state: str
    expires_at: datetime
    oauth_state: str | None
    code_verifier: str | None
    next_url: str
    claims: dict[str, Any] | None
    id_token: str | None
    csrf_token: str


def _of(row: WebSessionRow) -> WebSession:
    return WebSession(
        key=row.id,
        state=row.state,
        expires_at=row.expires_at,
        oauth_state=row.oauth_state,
        code_verifier=row.code_verifier,
        next_url=row.next_url,
        claims=row.claims,
        id_token=row.id_token,
        csrf_token=row.csrf_token,
    )


def start(
    db: Session,
    key: str,
    *,
    oauth_state: str,
    code_verifier: str,
    next_url: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    db.add(
        WebSessionRow(
            id=key,
            created_at=now,
            expires_at=expires_at,
            state="pending",
            oauth_state=oauth_state,
            code_verifier=code_verifier,
            next_url=next_url,
            csrf_token=csrf_token,
        )
    )
    db.execute(delete(WebSessionRow).where(col(WebSessionRow.expires_at) < now))  # tidy up


def get(db: Session, key: str, *, now: datetime) -> WebSession | None:
    row = db.get(WebSessionRow, key)
    if row is None or row.state == "ended" or _aware(row.expires_at) < now:
        return None
    return _of(row)


def activate(
    db: Session,
    key: str,
    *,
    claims: dict[str, Any],
    id_token: str | None,
    expires_at: datetime,
    csrf_token: str,
) -> None:
    row = db.get(WebSessionRow, key)
    assert row is not None
    row.state = "active"
    row.claims = claims
    row.id_token = id_token
    row.oauth_state = None
    row.code_verifier = None
    row.expires_at = expires_at
    row.csrf_token = csrf_token
    db.add(row)


def end(db: Session, key: str) -> None:
    row = db.get(WebSessionRow, key)
    if row is not None:
        row.state = "ended"
        row.claims = None
        row.id_token = None
        db.add(row)


def _aware(when: datetime) -> datetime:
    """SQLite hands datetimes back without their offset; they were stored in UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
