"""SQLite's log is copied back in the background, so commits do not have to."""

from __future__ import annotations

import itertools
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


def test_the_thread_slows_down_when_nothing_is_written(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[float] = []

    def timed(e: Engine) -> tuple[int, int, int]:
        passes.append(time.monotonic())
        return checkpoint(e)

    monkeypatch.setattr(wal, "checkpoint", timed)
    checkpointer = WalCheckpointer(engine, interval=0.01, idle_interval=0.3)
    write_notes(engine, 5)
    checkpointer.start()
    try:
        time.sleep(0.5)  # one pass copies the notes; the next finds the same log: idle
        idle_passes = len(passes)
        write_notes(engine, 5)  # the first pass after a write is back to the short interval
        time.sleep(0.7)
    finally:
        checkpointer.stop()
    assert 2 <= idle_passes <= 4
    gaps = [b - a for a, b in itertools.pairwise(passes)]
    assert max(gaps[: idle_passes - 1]) >= 0.25  # quiet: waited the idle interval
    assert len(passes) > idle_passes + 1
    assert min(gaps[idle_passes - 1 :]) < 0.2  # written to again: back to the short one
