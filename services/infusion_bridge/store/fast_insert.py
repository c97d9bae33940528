"""INSERTs of the intake hot path, straight on SQLite's driver cursor.

For each statement SQLAlchemy Core spends three to four times what the driver does
(execution context, bind processors, result set-up: ~20 µs against ~5 µs), and an order
arriving by ``POST`` is four INSERTs (order, version, identifiers, audit record). On SQLite
these run on the DB-API cursor of the transaction's own connection, with every value
turned into what SQLAlchemy would have stored: aware datetimes as UTC text
``YYYY-MM-DD HH:MM:SS.ffffff``, JSON as text (orjson, the engine's serializer), booleans
as 0/1. ``tests/unit/test_fast_insert.py`` writes the same rows both ways and compares
what is stored. On any other database (PostgreSQL) the statement runs through Core.

Inside a group commit's batch (:func:`held_inserts`) the rows are held back and go in as one
multi-row INSERT per table (:class:`HeldInserts`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, DateTime, Table, insert
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session

Row = dict[str, Any]


class FastInsert:
    """``INSERT INTO table (the rows' keys) VALUES (...)`` for one row or many."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.core = insert(table)
        self._convert = {c.name: _converter(c.type) for c in table.columns}
        self._sql: dict[tuple[tuple[str, ...], int], str] = {}
        self._rank: int | None = None

    def __call__(self, db: Session, rows: Row | Sequence[Row]) -> None:
        many = list(rows) if isinstance(rows, Sequence) else [rows]
        if not many:
            return
        conn = db.connection()
        if conn.dialect.name != "sqlite":
            conn.execute(self.core, many if len(many) > 1 else many[0])
            return
        columns = tuple(many[0])
        sql = self._statement(columns)  # also refuses a column the table lacks
        convert = [(name, self._convert[name]) for name in columns]
        values = [tuple(f(row[name]) for name, f in convert) for row in many]
        held: HeldInserts | None = conn.info.get(HELD)
        if held is not None:
            held.add(self, columns, values)
            return
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if len(values) == 1:
                cursor.execute(sql, values[0])
            else:
                cursor.executemany(sql, values)
        finally:
            cursor.close()

    def _statement(self, columns: tuple[str, ...], rows: int = 1) -> str:
        """``INSERT INTO table (columns) VALUES (?, ...)``, with ``rows`` rows of values."""
        sql = self._sql.get((columns, rows))
        if sql is not None:
            return sql
        unknown = set(columns) - set(self._convert)
        if unknown:
            raise KeyError(f"{self.table.name} has no column(s) {sorted(unknown)}")
        values = ", ".join([f"({', '.join('?' * len(columns))})"] * rows)
        sql = f"INSERT INTO {self.table.name} ({', '.join(columns)}) VALUES {values}"  # noqa: S608 - column names from the table, values bound
        if len(self._sql) < MAX_STATEMENTS:
            self._sql[(columns, rows)] = sql
        return sql

    def insert_rows(
        self, cursor: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """Converted ``rows`` as multi-row INSERTs (as many rows a statement as SQLite binds)."""
        per_statement = max(1, MAX_VARIABLES // len(columns))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            sql = self._statement(columns, len(chunk))
            cursor.execute(sql, [value for row in chunk for value in row])

    @property
    def rank(self) -> int:
        """This table's place among its metadata's tables, parents (foreign keys) first."""
        if self._rank is None:
            self._rank = self.table.metadata.sorted_tables.index(self.table)
        return self._rank


MAX_VARIABLES = 32_766
"""SQLite's limit on the values bound to one statement (SQLITE_MAX_VARIABLE_NUMBER, since
3.32); longer lists go in several statements."""
MAX_STATEMENTS = 256
"""Statement texts kept per table (by columns and row count)."""
HELD = "infusion.held_inserts"
"""Where a connection keeps the rows :func:`held_inserts` holds back (``Connection.info``)."""


class HeldInserts:
    """Rows of :class:`FastInsert` kept back, to go in as one multi-row INSERT per table.

    Group commit runs a batch's writes on one thread, which gives the GIL back at each
    statement: SQLite works without it, and the event loop takes it meanwhile. Getting it
    back costs the writer a wait each time, so a batch of 15 orders, three INSERTs each, took
    ~15 ms of which ~4 ms of CPU, and the loop sat idle waiting for it a quarter of the time.
    Held back, the same rows are three statements.
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[FastInsert, tuple[str, ...]], list[tuple[Any, ...]]] = {}

    def add(
        self, target: FastInsert, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        self._rows.setdefault((target, columns), []).extend(rows)

    def flush(self, driver_connection: Any) -> None:
        """Send what is held: parents before children (the tables' foreign keys), and each
        table's rows in the order they were added."""
        if not self._rows:
            return
        held, self._rows = self._rows, {}
        cursor = driver_connection.cursor()
        try:
            for target, columns in sorted(held, key=lambda key: key[0].rank):
                target.insert_rows(cursor, columns, held[(target, columns)])
        finally:
            cursor.close()


@contextmanager
def held_inserts(db: Session) -> Iterator[None]:
    """Within: the session's FastInserts (on SQLite) are held back, and sent before the next
    other statement of its connection runs (:func:`send_held_inserts`, an engine event) and
    when the block ends. A failure to send them raises where they are sent, so the block's
    transaction fails as a whole."""
    conn = db.connection()
    if conn.dialect.name != "sqlite":
        yield
        return
    info = conn.info  # the DBAPI connection's: it outlives this block
    held = info[HELD] = HeldInserts()
    try:
        yield
        held.flush(conn.connection.driver_connection)
    finally:
        info.pop(HELD, None)


def send_held_inserts(conn: Connection, *_: Any) -> None:
    """``before_cursor_execute``: whatever runs next sees the held rows (a read, an UPDATE)."""
    held: HeldInserts | None = conn.info.get(HELD)
    if held is not None:
        held.flush(conn.connection.driver_connection)


def _converter(kind: TypeEngine[Any]) -> Callable[[Any], Any]:
    base = kind.impl_instance if isinstance(kind, TypeDecorator) else kind
    if isinstance(base, DateTime):
        return _utc_datetime if base is not kind else _datetime
    if isinstance(base, JSON):
        return _json
    if isinstance(base, Boolean):
        return _boolean
    return _same


def _same(value: Any) -> Any:
    return value


def _utc_datetime(value: datetime | None) -> str | None:
    """sqlmodel's ``UTCDateTime``: aware datetimes only, stored in UTC."""
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError("datetimes are stored in UTC: give one with its timezone")
    return _datetime(value.astimezone(UTC))


def _datetime(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite ``DATETIME`` text (the offset, if any, is not stored)."""
    if value is None:
        return None
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _boolean(value: bool | None) -> int | None:
    return None if value is None else int(value)
