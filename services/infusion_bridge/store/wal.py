"""SQLite's write-ahead log, copied back into the database file off the request path.

In WAL mode every commit appends to the log, and the commit that takes the log past
``wal_autocheckpoint`` pages copies it all back into the database file before it returns:
under a steady stream of orders that was one commit in a few hundred taking tens of
milliseconds, with every request queued behind it (the slowest 1 % of answers). Here a
thread of its own runs a ``PASSIVE`` checkpoint every ``interval`` seconds: it copies what
no reader still needs, never waits for or blocks a writer, and SQLite works without the
GIL meanwhile, so the copying runs beside the requests. Connections keep a large automatic
checkpoint (``store.db.AUTOCHECKPOINT_PAGES``) as a backstop for processes without this thread
(the command line) and for a log this thread could not keep up with.

The log only starts over from its beginning after a checkpoint that finds nothing left to
copy, and under steady writes that is the automatic one, run by the commit that takes the log
past ``AUTOCHECKPOINT_PAGES``: it copies what came in since this thread's last pass. So while
there are writes the thread runs every ``interval`` (0.1 s: at ~1,000 orders a second, about
700 pages for that commit to copy, not the 3,500 of a half-second pass, which held up one
batch in a hundred by ~15 ms); once a pass finds the log as the pass before left it, it waits
``idle_interval`` instead (0.25 s: less than the ~0.4 s a burst of writes after a quiet spell
takes to fill the 3,000 pages, so that no commit is left the whole log to copy). A pass that
fails right after one that failed counts as quiet too: it is tried again after the longer wait.
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from ..logging import get_logger

log = get_logger(__name__)


def checkpoint(engine: Engine) -> tuple[int, int, int]:
    """One ``PASSIVE`` checkpoint: (busy, log pages, pages copied back)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        row = cursor.fetchone()
        cursor.close()
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
    finally:
        raw.close()


class WalCheckpointer:
    """Checkpoints ``engine``'s SQLite log in the background (nothing to do elsewhere)."""

    def __init__(self, engine: Engine, interval: float = 0.1, idle_interval: float = 0.25) -> None:
        self.engine = engine
        self.interval = interval
        self.idle_interval = idle_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.engine.dialect.name != "sqlite" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None

    def _run(self) -> None:
        wait, last = self.interval, (0, 0, 0)
        while not self._stop.wait(wait):
            try:
                found = checkpoint(self.engine)
            except Exception as exc:  # a busy or closed database: try again next time
                log.warning("wal_checkpoint_failed", error=type(exc).__name__)
                found = (1, -1, -1)
            wait, last = (self.idle_interval if quiet(found, last) else self.interval), found


def quiet(found: tuple[int, int, int], last: tuple[int, int, int]) -> bool:
    """Whether a pass found the log as the pass before left it, all of it copied back already
    (nothing is writing), or failed as the one before did."""
    return found == last and found[1] == found[2]
