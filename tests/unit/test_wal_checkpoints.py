"""SQLite's log is copied back in the background, so commits do not have to."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from services.infusion_bridge.store.db import make_engine
from services.infusion_bridge.store.wal import WalCheckpointer, checkpoint


def log_pages_after_writes(folder: Path, *, background: bool) -> int:
    engine = make_engine(f"sqlite:///{folder / 'store.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (body TEXT)"))
    checkpointer = WalCheckpointer(engine, interval=0.02)
    if background:
        checkpointer.start()
    try:
        for _ in range(400):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO notes VALUES (:b)"), {"b": "x" * 3000})
            time.sleep(0.001)
    finally:
        checkpointer.stop()
    _, pages, _ = checkpoint(engine)  # pages in the log since it last started over
    engine.dispose()
    return pages


def test_the_log_stays_short_with_background_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    alone = log_pages_after_writes(tmp_path / "a", background=False)
    helped = log_pages_after_writes(tmp_path / "b", background=True)
    assert alone >= 400  # every commit appended; nothing copied back (backstop not reached)
    assert helped < alone / 4


def test_does_nothing_for_other_databases() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    checkpointer = WalCheckpointer(engine)
    checkpointer.start()
    assert checkpointer._thread is None
    checkpointer.stop()
