"""Engine, sessions and migrations for the local store (SQLite by default, PostgreSQL too)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

from ..clock import utcnow
from . import audit
from .fast_insert import send_held_inserts

AUTOCHECKPOINT_PAGES = 3_000
"""A commit checkpoints SQLite's log by itself past this many pages (~12 MB; SQLite's
default is 1,000): the service's own checkpoints run in the background (store/wal.py), and
the commit past this mark finds only what came in since their last pass (a tenth of a second
while writes go on) left to copy, then the log starts over. 3,000 against 10,000: p99 33-39
ms against 42-45 at ~1,150 orders/s (a 12 MB log; docs/benchmarks.md)."""

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(database_url: str) -> Engine:
    """Create the engine; for SQLite, make the file's folder and turn on WAL + FKs."""
    url = make_url(database_url)
    # orjson for the JSON columns (orders keep their resource as received): several
    # times faster than json.dumps on the intake path, and the same JSON text.
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", send_held_inserts)
    return engine


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; synchronous=NORMAL in WAL mode is still
    # durable across process crashes (only an OS crash can lose the last commits).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # a backstop: the service checkpoints in the background (store/wal.py)
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    cursor.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work (a database session): commit on success, roll back on any exception."""
    with Session(engine, expire_on_commit=False) as db:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise


_write_locks: dict[int, threading.Lock] = {}
_write_locks_guard = threading.Lock()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Session]:
    """A unit of work that writes. On SQLite, writers take turns in this process first,
    then across processes.

    SQLite has one writer at a time; left to itself, a waiting writer polls with growing
    sleeps (its busy handler), which under concurrent requests turns a 5 ms write into a
    1 s tail. A process-wide lock hands the turn over at once instead. ``BEGIN IMMEDIATE``
    then takes the file's write lock before the first read, so that a read-then-write
    (a conditional create, a create-by-PUT) in another process on the same file cannot
    interleave: with SQLite's default deferred BEGIN both would read, and the second to
    write would create a duplicate or fail with "database is locked" (busy snapshot).
    PostgreSQL needs neither lock: writers that must not interleave take advisory locks
    (:func:`lock_keys`).
    """
    if engine.dialect.name != "sqlite":
        with _audited(transaction(engine)) as db:
            yield db
        return
    with sqlite_write_lock(engine), _audited(transaction(engine)) as db:
        # The audit record (see _audited) is inserted on this same connection before the
        # commit, so it is part of the IMMEDIATE transaction like every other write.
        db.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield db


def sqlite_write_lock(engine: Engine) -> threading.Lock:
    """This process's turn to write to ``engine``'s SQLite file (one lock per engine)."""
    with _write_locks_guard:
        return _write_locks.setdefault(id(engine), threading.Lock())


LOCK_NAMESPACE_ORDERS = 0x0B0D
"""The first half of the advisory-lock keys of order intake (any fixed int4)."""
MAX_FINE_LOCKS = 64
"""More keys than this in one transaction take the namespace-wide lock instead."""


def lock_keys(
    db: Session, namespace: int, keys: Iterable[int], *, everything: bool = False
) -> None:
    """Serialise this transaction with every other one that locks any of ``keys``
    (PostgreSQL advisory locks, released at commit or rollback).

    Callers pass the keys (:func:`~.keys.lock_key`) of everything they read before they
    write, so that the read still holds when the write commits. Two levels keep the lock
    table small (PostgreSQL shares ~64 locks per connection among all transactions): a
    transaction with up to ``MAX_FINE_LOCKS`` keys holds the namespace key 0 *shared*
    plus each key exclusively; one with more (a large Bundle) holds key 0 *exclusively*,
    which excludes every fine-grained holder. Keys are taken in ascending order, after
    key 0, so two transactions never wait on each other in a cycle. ``everything`` takes
    key 0 exclusively whatever the keys (a read that no fine-grained key covers).

    SQLite needs nothing here: :func:`write_transaction` already holds the file's single
    write lock from its first statement.
    """
    if db.get_bind().dialect.name != "postgresql":
        return
    fine = sorted(set(keys))
    if not fine and not everything:
        return  # reads nothing another writer could be changing
    conn = db.connection()
    if everything or len(fine) > MAX_FINE_LOCKS:
        conn.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": namespace})
        return
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:ns, 0)"), {"ns": namespace})
    for key in fine:
        conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"), {"ns": namespace, "key": key})


@contextmanager
def _audited(unit: AbstractContextManager[Session]) -> Iterator[Session]:
    """A write made for a request carries that request's audit record in the same
    transaction (the first write of the request does; later ones need not)."""
    entry = audit.current()
    with unit as db:
        yield db
        if entry is not None and not entry.persisted:
            audit.insert(db, entry, status=None, now=utcnow())
    if entry is not None:
        entry.persisted = True  # committed


def insert_ignore(db: Session, table: type[SQLModel]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the dialect of the session's database."""
    dialect = db.get_bind().dialect.name
    module = sqlite_dialect if dialect == "sqlite" else postgresql_dialect
    return module.insert(table)


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


MIGRATION_LOCK = (0x0B0D, -1)
"""The advisory-lock key replicas starting together take while one of them migrates."""


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision``.

    On PostgreSQL, one process at a time: replicas (or ``serve --workers``) that start
    together wait on an advisory lock, and the later ones find the schema up to date.
    """
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.connect() as conn:
        key = {"ns": MIGRATION_LOCK[0], "key": MIGRATION_LOCK[1]}
        conn.execute(text("SELECT pg_advisory_lock(:ns, :key)"), key)
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), key)
            conn.commit()
