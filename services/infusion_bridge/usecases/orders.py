"""Orders, one at a time: accept (create, update, conditional create), delete, read, list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anyio.to_thread import run_sync

from fhir_mappings.errors import MappingError

from ..clock import utcnow
from ..domain.errors import Gone, NotFound
from ..domain.orders import patient_reference
from ..read_models import OrderPage, OrderRecord, OrderView
from ..runtime import Runtime
from ..store import orders as store
from ..store.db import transaction, write_transaction
from .order_intake import (
    claim_orders,
    find_existing,
    parse_if_none_exist,
    prepare_order,
    refusal,
    resolve_medications,
    store_order,
)

Json = dict[str, Any]
Applied = store.Applied
ApplyResult = store.ApplyResult


async def accept_order(
    rt: Runtime,
    resource: Json,
    *,
    order_id: str,
    source: str,
    if_none_exist: str | None = None,
) -> ApplyResult:
    """Map and store one order. With ``if_none_exist`` an existing match is returned
    instead (checked in the same write transaction, so concurrent retries cannot both
    create)."""
    condition = parse_if_none_exist(if_none_exist) if if_none_exist else None
    medications = await resolve_medications(rt.ehr, resource)

    def work() -> ApplyResult:
        try:
            prepared = prepare_order(
                resource, rt.catalog, order_id=order_id, medications=medications
            )
        except MappingError as exc:
            raise refusal(exc) from exc
        with write_transaction(rt.engine) as db:
            claim_orders(db, [prepared], conditions=[condition] if condition else [])
            if condition is not None:
                existing = find_existing(db, condition)
                if existing is not None:
                    return ApplyResult(Applied.MATCHED, existing)
            return store_order(db, prepared, source=source, now=utcnow())

    return await run_sync(work)


async def delete_order(rt: Runtime, order_id: str) -> None:
    """Record that the EHR deleted an order; the cached order stays, flagged as deleted."""

    def work() -> None:
        with write_transaction(rt.engine) as db:
            store.lock_orders(db, order_ids=[order_id])
            store.mark_deleted(db, order_id, version_id=None, now=utcnow())

    await run_sync(work)


async def read_order(rt: Runtime, order_id: str) -> OrderRecord:
    """The cached order (its resource as received); ``Gone`` once deleted."""

    def load() -> OrderRecord | None:
        with transaction(rt.engine) as db:
            return store.get_order(db, order_id)

    record = await run_sync(load)
    if record is None:
        raise NotFound(f"MedicationRequest/{order_id} is not known")
    if record.deleted:
        raise Gone(f"MedicationRequest/{order_id} was deleted")
    return record


@dataclass(frozen=True)
class OrderFilters:
    patient: str | None = None
    status: str | None = None
    drug: str | None = None
    include_deleted: bool = False
    offset: int = 0
    limit: int = 50


async def list_orders(rt: Runtime, f: OrderFilters) -> OrderPage:
    """Cached orders, newest first."""
    patient = patient_reference(f.patient) if f.patient else None

    def load() -> OrderPage:
        with transaction(rt.engine) as db:
            total, records = store.list_orders(
                db,
                patient=patient,
                status=f.status,
                drug=f.drug,
                include_deleted=f.include_deleted,
                offset=f.offset,
                limit=f.limit,
            )
        return OrderPage(
            total=total, offset=f.offset, limit=f.limit, items=[OrderView.of(r) for r in records]
        )

    return await run_sync(load)


async def order_view(rt: Runtime, order_id: str) -> OrderView:
    """One cached order with its linked premedication (or infusion) orders."""

    def load() -> OrderView | None:
        with transaction(rt.engine) as db:
            record = store.get_order(db, order_id)
            if record is None:
                return None
            return OrderView.of(record, store.linked_orders(db, record))

    view = await run_sync(load)
    if view is None:
        raise NotFound(f"order {order_id} is not in the cache")
    return view
