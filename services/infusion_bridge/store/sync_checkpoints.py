"""Where the pull sync got to: its checkpoint (the EHR's ``_lastUpdated`` of the newest
order seen), by name. Callers own the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from .tables import SyncCheckpointRow


def get_checkpoint(db: Session, name: str) -> str | None:
    row = db.get(SyncCheckpointRow, name)
    return row.last_updated if row else None


def set_checkpoint(db: Session, name: str, last_updated: str, *, now: datetime) -> None:
    row = db.get(SyncCheckpointRow, name)
    if row is None:
        db.add(SyncCheckpointRow(name=name, last_updated=last_updated, updated_at=now))
    else:
        row.last_updated = last_updated
        row.updated_at = now
        db.add(row)
