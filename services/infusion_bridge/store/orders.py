"""Writes to the order cache, and the current version of one order (what a write reads).
Searches, lists and old versions are in :mod:`.order_queries`. Callers own the transaction
(no commit here). Everything returned is a read model (:class:`OrderRecord`), never a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, bindparam, delete
from sqlmodel import Session, col

from ..domain.orders import Identifier, InfusionOrder
from ..read_models import OrderRecord
from .db import LOCK_NAMESPACE_ORDERS, insert_ignore, lock_keys
from .fast_insert import FastInsert
from .keys import lock_key, text_key
from .tables import (
    OrderIdentifierRow,
    OrderLinkRow,
    OrderRow,
    OrderVersionRow,
)


class Applied(StrEnum):
    """What writing one order version did to the cache."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # the same id + version again: a no-op
    STALE = "stale"  # an older version than the cached one: ignored
    MATCHED = "matched"  # a conditional create found this existing order


@dataclass(frozen=True)
class ApplyResult:
    outcome: Applied
    record: OrderRecord


def record_of(row: Any) -> OrderRecord:
    """The read model of an ``orders`` row (an ORM object or a Core row alike)."""
    return OrderRecord(
        id=row.id,
        version_id=row.version_id,
        last_updated=row.last_updated,
        source_version=row.source_version,
        received_at=row.received_at,
        source=row.source,
        deleted=row.deleted,
        status=row.status,
        role=row.role,
        drug_key=row.drug_key,
        patient=row.patient,
        group_value=row.group_value,
        order_json=row.order_json,
        resource=row.resource_json,
    )


# The write path of an order (read the current version, insert or update, identifiers)
# runs on SQLAlchemy Core, not the ORM: intake is the hot path, and the ORM's unit of work
# (identity map, flush, attribute events) cost more than the statements themselves.
# Everything here that writes ``orders`` goes through Core, so no ORM object goes stale.
# The statements are built once, so that SQLAlchemy compiles each once (its cache key
# of a statement with inline values costs more than running it).
ORDERS: Table = OrderRow.__table__  # type: ignore[attr-defined]
_SELECT = ORDERS.select().where(ORDERS.c.id == bindparam("key"))
_INSERT = FastInsert(ORDERS)
_UPDATE = ORDERS.update().where(ORDERS.c.id == bindparam("key"))
_INSERT_IDENTIFIERS = FastInsert(OrderIdentifierRow.__table__)  # type: ignore[attr-defined]
_INSERT_VERSION = FastInsert(OrderVersionRow.__table__)  # type: ignore[attr-defined]


def _current(db: Session, order_id: str) -> Any | None:
    return db.connection().execute(_SELECT, {"key": order_id}).first()


def get_order(db: Session, order_id: str) -> OrderRecord | None:
    row = _current(db, order_id)
    return record_of(row) if row is not None else None


def lock_orders(
    db: Session,
    *,
    order_ids: Iterable[str] = (),
    identifier_values: Iterable[str] = (),
    everything: bool = False,
) -> None:
    """Hold, until this transaction ends, the right to write these order ids and to search
    for these identifier values; call it before reading what the write depends on.

    Why advisory locks (and not a unique constraint or SERIALIZABLE): a conditional create
    must not see "no match" while another transaction is creating the match. A unique
    constraint cannot say that, because two orders may legitimately share an identifier
    (the EHR can PUT both, and a conditional create then matches both: 412). SERIALIZABLE
    would, but the loser fails at commit and has to redo the mapping and the whole write,
    and under a burst of retries of one order (what an EHR does after a timeout) most
    transactions lose. A lock per key makes the losers wait a few milliseconds and then
    read the winner's row: 200 with the existing order, an ``unchanged`` same-version PUT,
    never a duplicate, never a unique-key 500. Keys are hashed (:func:`lock_key`) on the
    identifier *value* alone, since a condition may leave out the system. ``everything``
    excludes every other order write (a conditional create whose condition names no order
    id and no identifier value, e.g. ``patient=...&status=active``).
    """
    if db.get_bind().dialect.name != "postgresql":
        return  # SQLite: the write transaction already holds the file's only write lock
    keys = [lock_key(f"id:{i}") for i in order_ids]
    keys += [lock_key(f"identifier:{v}") for v in identifier_values]
    lock_keys(db, LOCK_NAMESPACE_ORDERS, keys, everything=everything)


def apply_order(
    db: Session,
    order: InfusionOrder,
    resource: dict[str, Any],
    *,
    source: str,
    now: datetime,
    source_version: int | None = None,
    new: bool = False,
) -> ApplyResult:
    """Write one order as a new version of this server's, unless nothing changed.

    ``new``: the id was just made by this server (a create), so there is no row to read.

    ``source_version`` is the EHR's ``meta.versionId`` when the order came on one of the
    EHR's channels: the same as the cached one is a no-op, an older one is ignored. Content
    equal to the current version (``meta`` aside) makes no new version either. The new
    version gets ``meta.versionId``/``lastUpdated`` of this server, whatever the body said.
    """
    row = None if new else _current(db, order.id)
    if row is not None and source_version is not None and row.source_version is not None:
        if source_version == row.source_version:
            return ApplyResult(Applied.UNCHANGED, record_of(row))
        if source_version < row.source_version:
            return ApplyResult(Applied.STALE, record_of(row))
    conn = db.connection()
    if row is not None and not row.deleted and _content(row.resource_json) == _content(resource):
        if source_version is not None:
            conn.execute(_UPDATE, {"source_version": source_version, "key": order.id})
            row = SimpleNamespace(**{**row._asdict(), "source_version": source_version})
        return ApplyResult(Applied.UNCHANGED, record_of(row))
    version = row.version_id + 1 if row is not None else 1
    served = _stamped(resource, version, now)
    order = order.model_copy(update={"version_id": version, "last_updated": now})
    fields = _fields(order, served, source=source, now=now)
    fields["source_version"] = (
        source_version
        if source_version is not None
        else (row.source_version if row is not None else None)
    )
    if row is None:
        _INSERT(db, fields)
        outcome = Applied.CREATED
    else:
        conn.execute(_UPDATE, {**fields, "key": order.id})
        outcome = Applied.UPDATED
    _replace_links(db, order, fresh=outcome is Applied.CREATED)
    _INSERT_VERSION(
        db,
        {
            "order_id": order.id,
            "version_id": version,
            "last_updated": now,
            "deleted": False,
            "resource_json": served,
        },
    )
    return ApplyResult(outcome, record_of(SimpleNamespace(**fields)))


def mark_deleted(db: Session, order_id: str, *, now: datetime) -> OrderRecord | None:
    """Record a delete as a new version: the row stays (with its last content), flagged."""
    row = _current(db, order_id)
    if row is None or row.deleted:
        return record_of(row) if row is not None else None
    changes = {
        "deleted": True,
        "version_id": row.version_id + 1,
        "last_updated": now,
        "received_at": now,
    }
    conn = db.connection()
    conn.execute(_UPDATE, {**changes, "key": order_id})
    _INSERT_VERSION(
        db,
        {
            "order_id": order_id,
            "version_id": row.version_id + 1,
            "last_updated": now,
            "deleted": True,
            "resource_json": row.resource_json,
        },
    )
    return record_of(SimpleNamespace(**{**row._asdict(), **changes}))


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without what the server sets (``meta.versionId``/``lastUpdated``)."""
    meta = {
        k: v
        for k, v in (resource.get("meta") or {}).items()
        if k not in ("versionId", "lastUpdated")
    }
    body = {k: v for k, v in resource.items() if k != "meta"}
    return {**body, "meta": meta} if meta else body


def _stamped(resource: dict[str, Any], version: int, now: datetime) -> dict[str, Any]:
    meta = {
        **(resource.get("meta") or {}),
        "versionId": str(version),
        "lastUpdated": now.isoformat(),
    }
    return {**resource, "meta": meta}


def _fields(
    order: InfusionOrder, resource: dict[str, Any], *, source: str, now: datetime
) -> dict[str, Any]:
    group = _group_value(order)
    return {
        "id": order.id,
        "version_id": order.version_id,
        "last_updated": order.last_updated or now,
        "status": order.status.value,
        "patient": order.patient,
        "drug_key": order.drug.key,
        "rxnorm": order.drug.rxnorm or order.drug.ndc or "",  # the code the EHR sent
        "role": order.role,
        "group_value": group,
        "group_key": text_key(group) if group is not None else None,
        "deleted": False,
        "source": source,
        "received_at": now,
        "order_json": order.model_dump(mode="json"),
        "resource_json": resource,
    }


def _group_value(order: InfusionOrder) -> str | None:
    g = order.group_identifier
    return f"{g.system or ''}|{g.value}" if g else None


def _replace_links(db: Session, order: InfusionOrder, *, fresh: bool) -> None:
    """Rewrite the order's basedOn links and identifiers (a new order has none to drop).

    Every identifier gets its row, also one another order carries too. They go in as one
    executemany, which the driver sends in pages: a single multi-row INSERT of tens of
    thousands of identifiers would exceed PostgreSQL's 65,535 bind parameters.
    """
    if not fresh:
        db.execute(delete(OrderLinkRow).where(col(OrderLinkRow.order_id) == order.id))
        db.execute(delete(OrderIdentifierRow).where(col(OrderIdentifierRow.order_id) == order.id))
    targets = sorted(
        {ref.split("/", 1)[1] for ref in order.based_on if ref.startswith("MedicationRequest/")}
    )
    if targets:
        db.execute(
            insert_ignore(db, OrderLinkRow)
            .values([{"order_id": order.id, "target_id": t} for t in targets])
            .on_conflict_do_nothing()
        )
    if order.identifiers:
        _INSERT_IDENTIFIERS(db, identifier_rows(order.id, order.identifiers))


def identifier_rows(order_id: str, identifiers: Iterable[Identifier]) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order_id,
            "position": n,
            "system": i.system or "",
            "value": i.value,
            "value_key": text_key(i.value),
        }
        for n, i in enumerate(identifiers)
    ]
