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
from ..store import audit
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
            existing = find_existing(db, condition) if condition is not None else None
            if existing is not None:
                result = ApplyResult(Applied.MATCHED, existing)
            else:
                result = store_order(db, prepared, source=source, now=utcnow())
            audit.note("MedicationRequest", result.record.id, result.record.patient)
            return result

    result = await run_sync(work)
    if result.outcome in (Applied.CREATED, Applied.UPDATED) and result.record.role == "infusion":
        rt.request_history_pull(result.record.patient)
    return result


async def delete_order(rt: Runtime, order_id: str) -> None:
    """Record that the EHR deleted an order; the cached order stays, flagged as deleted."""

    def work() -> None:
        with write_transaction(rt.engine) as db:
            store.lock_orders(db, order_ids=[order_id])
            deleted = store.mark_deleted(db, order_id, version_id=None, now=utcnow())
            audit.note("MedicationRequest", order_id, deleted.patient if deleted else None)

    await run_sync(work)


def visible(record: OrderRecord | None, compartment: str | None) -> OrderRecord | None:
    """The order if the caller may see it: limited to one patient, others do not exist."""
    if record is None or (compartment is not None and record.patient != compartment):
        return None
    audit.note("MedicationRequest", record.id, record.patient)
    return record


async def read_order(rt: Runtime, order_id: str, compartment: str | None = None) -> OrderRecord:
    """The cached order (its resource as received); ``Gone`` once deleted."""

    def load() -> OrderRecord | None:
        with transaction(rt.engine) as db:
            return visible(store.get_order(db, order_id), compartment)

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


async def list_orders(rt: Runtime, f: OrderFilters, compartment: str | None = None) -> OrderPage:
    """Cached orders, newest first (only the compartment's patient's, if limited to one)."""
    patient = patient_reference(f.patient) if f.patient else None
    if compartment is not None:
        if patient not in (None, compartment):
            return OrderPage(total=0, offset=f.offset, limit=f.limit, items=[])
        patient = compartment

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
        items = [OrderView.of(r) for r in records if visible(r, compartment)]
        return OrderPage(total=total, offset=f.offset, limit=f.limit, items=items)

    return await run_sync(load)


async def order_view(rt: Runtime, order_id: str, compartment: str | None = None) -> OrderView:
    """One cached order with its linked premedication (or infusion) orders."""

    def load() -> OrderView | None:
        with transaction(rt.engine) as db:
            record = visible(store.get_order(db, order_id), compartment)
            if record is None:
                return None
            return OrderView.of(record, store.linked_orders(db, record))

    view = await run_sync(load)
    if view is None:
        raise NotFound(f"order {order_id} is not in the cache")
    return view
