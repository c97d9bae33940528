"""SQLite's log is copied back in the background, so commits do not have to."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.infusion_bridge.store import wal
from services.infusion_bridge.store.db import AUTOCHECKPOINT_PAGES, make_engine
from services.infusion_bridge.store.wal import WalCheckpointer, checkpoint


def write_notes(engine: Engine, count: int) -> None:
    for _ in range(count):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes VALUES (:b)"), {"b": "x" * 3000})


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (body TEXT)"))
    return engine


def test_commits_leave_the_copying_to_the_checkpoint(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == AUTOCHECKPOINT_PAGES
    write_notes(engine, 100)
    busy, pages, copied = checkpoint(engine)
    assert busy == 0
    assert pages >= 300  # three pages a note, all still in the log: no commit copied them
    assert copied == pages  # one checkpoint copies them all back


def test_the_thread_checkpoints_while_writes_go_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    done: list[tuple[int, int, int]] = []

    def counted(e: Engine) -> tuple[int, int, int]:
        done.append(checkpoint(e))
        return done[-1]

    monkeypatch.setattr(wal, "checkpoint", counted)
    checkpointer = WalCheckpointer(engine, interval=0.02)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while sum(c for _, _, c in done) == 0 and time.monotonic() < deadline:
            write_notes(engine, 20)
    finally:
        checkpointer.stop()
    assert sum(copied for _, _, copied in done) > 0  # pages went back while writes went on
    assert checkpointer._thread is None


def test_does_nothing_for_other_databases() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    checkpointer = WalCheckpointer(engine)
    checkpointer.start()
    assert checkpointer._thread is None
    checkpointer.stop()


@pytest.mark.parametrize(
    ("found", "last", "is_quiet"),
    [
        ((0, 120, 120), (0, 120, 120), True),  # the same log, all copied: nothing writes
        ((0, 150, 150), (0, 120, 120), False),  # it grew since
        ((0, 40, 40), (0, 120, 120), False),  # it started over since
        ((0, 120, 100), (0, 120, 100), False),  # not all copied back yet
        ((1, -1, -1), (1, -1, -1), True),  # failed twice: try again after the longer wait
        ((0, 0, 0), (0, 0, 0), True),  # an empty log
    ],
)
def test_a_pass_is_quiet_only_when_the_log_has_not_moved(
    found: tuple[int, int, int], last: tuple[int, int, int], is_quiet: bool
) -> None:
    assert wal.quiet(found, last) is is_quiet
