"""The hot path's INSERTs on SQLite's driver cursor store exactly what SQLAlchemy Core
stores for the same rows, and read back the same through SQLAlchemy."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, insert, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.infusion_bridge.store import fast_insert
from services.infusion_bridge.store.db import make_engine, migrate
from services.infusion_bridge.store.fast_insert import HELD, FastInsert, held_inserts
from services.infusion_bridge.store.tables import AuditRow, OrderRow, OrderVersionRow

AUDIT: Table = AuditRow.__table__  # type: ignore[attr-defined]
ORDERS: Table = OrderRow.__table__  # type: ignore[attr-defined]
VERSIONS: Table = OrderVersionRow.__table__  # type: ignore[attr-defined]
EAST = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def audit_row(request_id: str, recorded: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "recorded": recorded,
        "action": "C",
        "interaction": "create",
        "outcome": "0",
        "status": None,
        "subject": "user-1",
        "who": "Nurse Ünal",
        "client_id": None,
        "roles": "nurse",
        "resource_type": "MedicationRequest",
        "patient": "Patient/1",
        "entities": [{"type": "MedicationRequest", "id": "a", "patient": None}],
        "method": "POST",
        "route": "/fhir/MedicationRequest",
        "request_id": request_id,
        "source": "127.0.0.1",
        "reason": None,
        **extra,
    }


def order_row(order_id: str, when: datetime) -> dict[str, Any]:
    return {
        "id": order_id,
        "version_id": 1,
        "last_updated": when,
        "status": "active",
        "patient": "Patient/1",
        "drug_key": "ocrelizumab",
        "rxnorm": "1876366",
        "role": "infusion",
        "group_value": None,
        "group_key": None,
        "deleted": False,
        "source": "api",
        "received_at": when,
        "order_json": {"dose": {"value": 600.0}, "identifiers": []},
        "resource_json": {"resourceType": "MedicationRequest", "note": [{"text": "ä \u2028"}]},
        "source_version": None,
    }


def stored(engine: Engine, table: Table, key: str, value: str) -> tuple[Any, ...]:
    columns = ", ".join(c.name for c in table.columns if c.name != "id" or key == "id")
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                text(f"SELECT {columns} FROM {table.name} WHERE {key} = :v"),  # noqa: S608
                {"v": value},
            ).one()
        )


def write_both(
    engine: Engine, table: Table, fast_row: dict[str, Any], core_row: dict[str, Any]
) -> None:
    with Session(engine) as db:
        FastInsert(table)(db, fast_row)
        db.connection().execute(insert(table), core_row)
        db.commit()


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 30, 7, 38, 57, 519504, tzinfo=UTC),
        datetime(2026, 11, 30, 7, 38, 57, tzinfo=UTC),  # no microseconds
        datetime(2026, 12, 1, 1, 0, 0, 5, tzinfo=EAST),  # another offset, another day in UTC
    ],
)
def test_stores_what_core_stores(engine: Engine, when: datetime) -> None:
    write_both(engine, AUDIT, audit_row("fast", when), audit_row("core", when))
    fast = stored(engine, AUDIT, "request_id", "fast")
    core = stored(engine, AUDIT, "request_id", "core")
    assert fast[:-3] + fast[-2:] == core[:-3] + core[-2:]  # all but request_id
    write_both(engine, ORDERS, order_row("fast", when), order_row("core", when))
    assert stored(engine, ORDERS, "id", "fast")[1:] == stored(engine, ORDERS, "id", "core")[1:]


def test_reads_back_through_sqlalchemy(engine: Engine) -> None:
    when = datetime(2026, 12, 1, 1, 0, 0, 5, tzinfo=EAST)
    with Session(engine) as db:
        FastInsert(ORDERS)(db, order_row("o-1", when))
        FastInsert(VERSIONS)(
            db,
            [
                {
                    "order_id": "o-1",
                    "version_id": v,
                    "last_updated": when,
                    "deleted": v == 2,
                    "resource_json": {"v": v},
                }
                for v in (1, 2)
            ],
        )
        db.commit()
    with engine.connect() as conn:
        order = conn.execute(select(ORDERS).where(ORDERS.c.id == "o-1")).one()
        versions = conn.execute(select(VERSIONS).order_by(VERSIONS.c.version_id)).all()
    assert order.last_updated == when.astimezone(UTC)
    assert order.deleted is False
    assert order.order_json == {"dose": {"value": 600.0}, "identifiers": []}
    assert [(v.version_id, v.deleted, v.resource_json) for v in versions] == [
        (1, False, {"v": 1}),
        (2, True, {"v": 2}),
    ]


def test_refuses_a_time_without_its_zone_and_an_unknown_column(engine: Engine) -> None:
    with Session(engine) as db:
        with pytest.raises(ValueError, match="timezone"):
            FastInsert(AUDIT)(db, audit_row("naive", datetime(2026, 11, 30, 7, 0)))
        with pytest.raises(KeyError, match="no column"):
            FastInsert(AUDIT)(db, audit_row("x", datetime.now(UTC), colour="blue"))
        db.rollback()


def version_row(order_id: str, version: int, when: datetime) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "version_id": version,
        "last_updated": when,
        "deleted": False,
        "resource_json": {"v": version},
    }


def test_held_rows_are_stored_as_sent_at_once(engine: Engine) -> None:
    """Held back, then one multi-row INSERT a table: the same rows as one at a time, and a
    child table's rows wait for their parents (foreign keys) whatever order they came in."""
    when = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    with Session(engine) as db:
        with held_inserts(db):
            for n in range(40):
                FastInsert(VERSIONS)(db, version_row(f"o-{n}", 1, when))  # before its order
                slim = {k: v for k, v in order_row(f"o-{n}", when).items() if k != "source_version"}
                FastInsert(ORDERS)(db, order_row(f"o-{n}", when) if n % 2 else slim)
            FastInsert(AUDIT)(db, [audit_row(f"r-{n}", when) for n in range(3)])
            assert db.connection().execute(text("SELECT 1")).scalar() == 1  # sends them first
            FastInsert(AUDIT)(db, audit_row("r-3", when))
        db.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar() == 40
        assert conn.execute(text("SELECT count(*) FROM order_versions")).scalar() == 40
        requests = conn.execute(text("SELECT request_id FROM audit_events ORDER BY id")).scalars()
        assert list(requests) == ["r-0", "r-1", "r-2", "r-3"]  # in the order added
    write_both(engine, ORDERS, order_row("one", when), order_row("core", when))
    assert stored(engine, ORDERS, "id", "o-1")[1:] == stored(engine, ORDERS, "id", "core")[1:]


def test_a_read_in_the_block_sees_the_held_rows(engine: Engine) -> None:
    when = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    with Session(engine) as db:
        with held_inserts(db):
            FastInsert(ORDERS)(db, order_row("o-1", when))
            found = db.connection().execute(select(ORDERS.c.id)).scalars().all()
            assert found == ["o-1"]
        db.rollback()


def test_rows_that_cannot_go_in_fail_the_block(engine: Engine) -> None:
    when = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    with Session(engine) as db:

        def twice() -> None:
            with held_inserts(db):
                FastInsert(ORDERS)(db, order_row("same", when))
                FastInsert(ORDERS)(db, order_row("same", when))  # held: fails when sent

        with pytest.raises(sqlite3.IntegrityError):
            twice()
        db.rollback()
        assert HELD not in db.connection().info  # nothing left held for the next block
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar() == 0


def test_more_values_than_one_statement_binds_go_in_several(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_insert, "MAX_VARIABLES", 40)  # two audit rows a statement
    when = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    with Session(engine) as db:
        with held_inserts(db):
            FastInsert(AUDIT)(db, [audit_row(f"r-{n}", when) for n in range(7)])
        db.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 7
