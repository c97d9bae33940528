"""Reads of the order cache: searches, lists, linked and active orders, old versions.
Callers own the transaction. Everything returned is a read model, never a row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func
from sqlmodel import Session, col, or_, select

from ..read_models import OrderRecord, OrderVersion
from .keys import text_key
from .orders import record_of
from .tables import OrderIdentifierRow, OrderLinkRow, OrderRow, OrderVersionRow

Token = tuple[str | None, str | None]
"""A FHIR token search value ``[system|][code]`` as (system, code); None matches any."""


def find_by_identifier(db: Session, system: str | None, value: str) -> list[OrderRecord]:
    return search_orders(db, identifiers=((system, value),), limit=None)[1]


def search_orders(
    db: Session,
    *,
    ids: tuple[str, ...] = (),
    identifiers: tuple[Token, ...] = (),
    statuses: tuple[str, ...] = (),
    patients: tuple[str, ...] = (),
    offset: int = 0,
    limit: int | None = 50,
) -> tuple[int, list[OrderRecord]]:
    """Orders (not deleted) matching every given criterion, each a list of alternatives;
    newest first, with the total count."""
    query = select(OrderRow).where(col(OrderRow.deleted).is_(False))
    if ids:
        query = query.where(col(OrderRow.id).in_(ids))
    if statuses:
        query = query.where(col(OrderRow.status).in_(statuses))
    if patients:
        query = query.where(col(OrderRow.patient).in_(patients))
    if identifiers:
        owners = select(OrderIdentifierRow.order_id).where(
            or_(*(_token_match(system, value) for system, value in identifiers))
        )
        query = query.where(col(OrderRow.id).in_(owners))
    total = db.exec(select(func.count()).select_from(query.subquery())).one()
    if limit == 0:
        return total, []
    query = query.order_by(col(OrderRow.received_at).desc(), col(OrderRow.id).desc())
    rows = db.exec(query.offset(offset).limit(limit)).all()
    return total, [record_of(r) for r in rows]


def _token_match(system: str | None, value: str | None) -> Any:
    conditions = []
    if system is not None:
        conditions.append(col(OrderIdentifierRow.system) == system)
    if value is not None:
        # through the hashed key (indexed; a B-tree entry of the long value would not fit)
        conditions.append(col(OrderIdentifierRow.value_key) == text_key(value))
        conditions.append(col(OrderIdentifierRow.value) == value)
    return and_(*conditions)


def get_order_version(db: Session, order_id: str, version_id: int) -> OrderVersion | None:
    row = db.get(OrderVersionRow, (order_id, version_id))
    return _version_of(row) if row is not None else None


def order_history(db: Session, order_id: str) -> list[OrderVersion]:
    """Every version of one order, newest first."""
    query = (
        select(OrderVersionRow)
        .where(OrderVersionRow.order_id == order_id)
        .order_by(col(OrderVersionRow.version_id).desc())
    )
    return [_version_of(r) for r in db.exec(query).all()]


def _version_of(row: OrderVersionRow) -> OrderVersion:
    return OrderVersion(
        id=row.order_id,
        version_id=row.version_id,
        last_updated=row.last_updated,
        deleted=row.deleted,
        resource=row.resource_json,
    )


def list_orders(
    db: Session,
    *,
    patient: str | None = None,
    status: str | None = None,
    drug: str | None = None,
    include_deleted: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, list[OrderRecord]]:
    """Orders matching the filters, newest first, and the total count."""
    query = select(OrderRow)
    if patient:
        query = query.where(OrderRow.patient == patient)
    if status:
        query = query.where(OrderRow.status == status)
    if drug:
        # by catalog key ("ocrelizumab") or by the exact RxNorm code the EHR sent
        query = query.where(or_(OrderRow.drug_key == drug, OrderRow.rxnorm == drug))
    if not include_deleted:
        query = query.where(col(OrderRow.deleted).is_(False))
    total = db.exec(select(func.count()).select_from(query.subquery())).one()
    rows = db.exec(
        query.order_by(col(OrderRow.received_at).desc(), col(OrderRow.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return total, [record_of(r) for r in rows]


CLOSED_STATUSES = ("cancelled", "completed", "stopped", "entered-in-error")
"""Orders of an earlier cycle (or withdrawn) that a session must not link to."""


def linked_orders(db: Session, row: OrderRecord) -> list[OrderRecord]:
    """Orders linked to ``row``: premeds based on it, or sharing its groupIdentifier.

    Only orders of the same patient that are still open: a ``groupIdentifier`` value is not
    unique across patients, and cancelled or completed orders belong to earlier cycles.
    """
    based = select(OrderLinkRow.order_id).where(OrderLinkRow.target_id == row.id)
    query = select(OrderRow).where(
        OrderRow.id != row.id,
        OrderRow.patient == row.patient,
        col(OrderRow.status).not_in(CLOSED_STATUSES),
    )
    if row.group_value:
        query = query.where(
            or_(
                col(OrderRow.id).in_(based),
                (OrderRow.group_key == text_key(row.group_value))
                & (OrderRow.group_value == row.group_value),
            )
        )
    else:
        query = query.where(col(OrderRow.id).in_(based))
    return [record_of(r) for r in db.exec(query.order_by(col(OrderRow.id))).all()]


def active_infusion_orders(db: Session, patient: str) -> list[OrderRecord]:
    """The patient's active infusion orders, newest first."""
    rows = db.exec(
        select(OrderRow)
        .where(
            OrderRow.patient == patient,
            OrderRow.status == "active",
            OrderRow.role == "infusion",
            col(OrderRow.deleted).is_(False),
        )
        .order_by(col(OrderRow.received_at).desc(), col(OrderRow.id).desc())
    ).all()
    return [record_of(r) for r in rows]


def body_surface_areas(db: Session, order_ids: set[str]) -> dict[str, float | None]:
    """The body surface area (m2) each of these orders carries, if any."""
    rows = db.exec(select(OrderRow).where(col(OrderRow.id).in_(order_ids)))
    return {o.id: o.order_json.get("body_surface_area_m2") for o in rows}
