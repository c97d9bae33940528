"""Group commit: writes that arrive together share one SQLite transaction, and still each
get their own result, their own error and their own audit record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.infusion_bridge.domain.errors import PreconditionFailed
from services.infusion_bridge.store import audit
from services.infusion_bridge.store.db import make_engine, migrate
from services.infusion_bridge.store.group_commit import GroupCommit


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (n INTEGER PRIMARY KEY)"))
    yield engine
    engine.dispose()


def count_commits(engine: Engine) -> list[int]:
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    return commits


def note(n: int, *, fail: bool = False):  # type: ignore[no-untyped-def]
    def write(db: Session) -> int:
        db.connection().execute(text("INSERT INTO notes (n) VALUES (:n)"), {"n": n})
        if fail:
            raise PreconditionFailed(f"note {n} is refused")
        return n * 10

    return write


def stored(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT n FROM notes ORDER BY n"))]


def audit_rows(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT request_id, outcome FROM audit_events ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


async def run_all(writes: GroupCommit, *jobs) -> list[object]:  # type: ignore[no-untyped-def]
    return await asyncio.gather(*(writes.run(job) for job in jobs), return_exceptions=True)


def test_concurrent_writes_share_commits_and_each_gets_its_result(engine: Engine) -> None:
    writes = GroupCommit(engine)
    commits = count_commits(engine)
    try:
        results = asyncio.run(run_all(writes, *(note(n) for n in range(200))))
    finally:
        writes.close()
    assert results == [n * 10 for n in range(200)]
    assert stored(engine) == list(range(200))
    assert 1 <= len(commits) < 200  # batched: fewer commits than writes


def test_a_failing_write_takes_no_other_write_with_it(engine: Engine) -> None:
    writes = GroupCommit(engine)
    try:
        results = asyncio.run(run_all(writes, *(note(n, fail=n == 7) for n in range(20))))
    finally:
        writes.close()
    assert isinstance(results[7], PreconditionFailed)
    assert [r for i, r in enumerate(results) if i != 7] == [n * 10 for n in range(20) if n != 7]
    assert stored(engine) == [n for n in range(20) if n != 7]  # nothing of the failed one


def test_each_write_carries_its_own_requests_audit_record_once(engine: Engine) -> None:
    writes = GroupCommit(engine)

    async def request(n: int) -> audit.AuditEntry:
        entry = audit.AuditEntry("create", "POST", "/notes", f"req-{n}", "127.0.0.1")
        audit.begin(entry)  # as the guard does, in this request's own context
        await writes.run(note(n, fail=n == 3))
        return entry

    async def many() -> list[object]:
        return await asyncio.gather(*(request(n) for n in range(12)), return_exceptions=True)

    try:
        results = asyncio.run(many())
    finally:
        writes.close()
    assert isinstance(results[3], PreconditionFailed)
    assert all(e.persisted for i, e in enumerate(results) if i != 3)  # type: ignore[union-attr]
    rows = audit_rows(engine)
    # one record per successful write, in the same transaction as its note; the refused
    # write's record is not written here (the HTTP edge writes it with its status)
    assert sorted(rid for rid, _ in rows) == sorted(f"req-{n}" for n in range(12) if n != 3)
    assert {outcome for _, outcome in rows} == {"0"}


def test_close_finishes_queued_writes(engine: Engine) -> None:
    writes = GroupCommit(engine)

    async def go() -> list[object]:
        jobs = [asyncio.ensure_future(writes.run(note(n))) for n in range(30)]
        await asyncio.sleep(0)
        return await asyncio.gather(*jobs)

    results = asyncio.run(go())
    writes.close()
    assert results == [n * 10 for n in range(30)]
    assert writes._thread is None


def test_each_write_of_a_batch_sees_what_the_writes_before_it_left(engine: Engine) -> None:
    """As if each had its own transaction: an ORM object loaded by one write is not handed
    stale to the next after a Core statement changed its row."""
    from datetime import UTC, datetime

    from services.infusion_bridge.store.tables import SyncCheckpointRow

    now = datetime.now(UTC)

    def create(db: Session) -> str:
        db.add(SyncCheckpointRow(name="sync", last_updated="v1", updated_at=now))
        return "created"

    def load(db: Session) -> tuple[object, str]:
        row = db.get(SyncCheckpointRow, "sync")
        # the row itself goes out with the answer (and stays alive in the session's map)
        return row, row.last_updated if row else "missing"

    def change(db: Session) -> str:
        db.connection().execute(
            text("UPDATE sync_checkpoints SET last_updated = 'v2' WHERE name = 'sync'")
        )
        return "changed"

    def pause(db: Session) -> str:
        time.sleep(0.2)  # holds the writer while the others queue up behind it
        return "paused"

    writes = GroupCommit(engine)
    commits = count_commits(engine)
    try:
        results = asyncio.run(run_all(writes, pause, create, load, change, load))
    finally:
        writes.close()
    assert [r[1] if isinstance(r, tuple) else r for r in results] == [
        "paused",
        "created",
        "v1",
        "changed",
        "v2",
    ]
    assert len(commits) <= 2  # the four after the pause went in one transaction


class Abort(BaseException):
    """Not an Exception: what a write should never raise, but might."""


def test_the_writer_survives_a_write_that_raises_what_is_not_an_exception(
    engine: Engine,
) -> None:
    def aborting(db: Session) -> int:
        raise Abort("out of here")

    writes = GroupCommit(engine)
    try:
        first = asyncio.run(run_all(writes, aborting))
        later = asyncio.run(run_all(writes, note(1)))
    finally:
        writes.close()
    assert isinstance(first[0], Abort)
    assert later == [10]
