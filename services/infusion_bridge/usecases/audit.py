"""The audit trail as use cases see it: open a request's record, read records as FHIR.

The record itself is written with the data (``store.db.write_transaction``) or, for a
request that wrote nothing, by :func:`close_request` once its status is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from anyio.to_thread import run_sync

from ..clock import utcnow
from ..domain.audit import AuditRecord
from ..runtime import Runtime
from ..store import audit
from ..store.audit import AuditEntry
from ..store.db import transaction

__all__ = ["AuditEntry", "AuditQuery", "close_request", "open_request", "search_audit"]


def open_request(entry: AuditEntry) -> AuditEntry:
    """Make ``entry`` the running request's audit record."""
    audit.begin(entry)
    return entry


async def close_request(rt: Runtime, entry: AuditEntry, status: int) -> None:
    """Write the record of a request that wrote none with its data (reads, refusals)."""
    if entry.persisted:
        return

    def write() -> None:
        with transaction(rt.engine) as db:
            audit.insert(db, entry, status=status, now=utcnow())

    await run_sync(write)
    entry.persisted = True


@dataclass(frozen=True)
class AuditQuery:
    patient: str | None = None
    agent: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    offset: int = 0
    count: int = 50


async def search_audit(rt: Runtime, q: AuditQuery) -> tuple[int, list[AuditRecord]]:
    def load() -> tuple[int, list[AuditRecord]]:
        with transaction(rt.engine) as db:
            return audit.search(
                db,
                patient=q.patient,
                agent=q.agent,
                since=q.since,
                before=q.before,
                offset=q.offset,
                limit=q.count,
            )

    return await run_sync(load)
