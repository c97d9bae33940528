"""Engine, sessions and migrations for the local store (SQLite by default, PostgreSQL too)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

from ..clock import utcnow
from . import audit

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(database_url: str) -> Engine:
    """Create the engine; for SQLite, make the file's folder and turn on WAL + FKs."""
    url = make_url(database_url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; synchronous=NORMAL in WAL mode is still
    # durable across process crashes (only an OS crash can lose the last commits).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
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
    """A unit of work that writes. On SQLite, writers take turns in this process first.

    SQLite has one writer at a time; left to itself, a waiting writer polls with growing
    sleeps (its busy handler), which under concurrent requests turns a 5 ms write into a
    1 s tail. A process-wide lock hands the turn over at once instead. PostgreSQL needs
    no such lock.
    """
    if engine.dialect.name != "sqlite":
        with _audited(transaction(engine)) as db:
            yield db
        return
    with _write_locks_guard:
        lock = _write_locks.setdefault(id(engine), threading.Lock())
    with lock, _audited(transaction(engine)) as db:
        yield db


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


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)
