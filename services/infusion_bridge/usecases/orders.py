"""Orders, one at a time: accept (create, update, conditional create), delete, read (and
read a version, the history), list."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from anyio.to_thread import run_sync
from sqlmodel import Session

from fhir_mappings.errors import MappingError

from ..clock import utcnow
from ..domain.errors import Gone, Invalid, NotFound
from ..domain.orders import patient_reference
from ..read_models import OrderPage, OrderRecord, OrderVersion, OrderView
from ..runtime import Runtime
from ..store import audit
from ..store import order_queries as queries
from ..store import orders as store
from ..store.db import transaction, write_transaction
from .order_intake import (
    EHR_SOURCES,
    check_version,
    claim_orders,
    prepare_order,
    refusal,
    resolve_medications,
    store_order,
)
from .order_search import find_existing, read_if_none_exist

Json = dict[str, Any]
Applied = store.Applied
ApplyResult = store.ApplyResult


async def accept_order(
    rt: Runtime,
    resource: Json,
    *,
    order_id: str | None,
    source: str,
    if_none_exist: str | None = None,
    if_match: str | None = None,
    base: str | None = None,
) -> ApplyResult:
    """Map and store one order: under ``order_id`` (an update, a create-by-PUT) or, when
    it is ``None``, under a new id of this server's (a create). With ``if_none_exist`` an
    existing match is returned instead (checked in the same write transaction, so
    concurrent retries cannot both create); with ``if_match`` (an ETag) the order must
    still be at that version.
    ``base`` is this FHIR base's URL, for absolute references in the condition."""
    condition = (
        read_if_none_exist(if_none_exist, local_bases=local_bases(rt, base))
        if if_none_exist is not None
        else None
    )
    expected = expected_version(if_match, source)
    medications = await resolve_medications(rt.ehr, resource)
    new = order_id is None
    order_id = order_id or uuid.uuid4().hex
    try:  # on the event loop: pure CPU work, which a worker thread would only slow down
        prepared = prepare_order(
            resource,
            rt.catalog,
            order_id=order_id,
            medications=medications,
            ehr_sourced=source in EHR_SOURCES,
        )
    except MappingError as exc:
        raise refusal(exc) from exc

    def write(db: Session) -> ApplyResult:
        claim_orders(
            db,
            [] if new else [prepared],
            conditions=[condition] if condition is not None else [],
        )
        existing = find_existing(db, condition) if condition is not None else None
        if existing is not None:
            result = ApplyResult(Applied.MATCHED, existing)
        else:
            result = store_order(
                db, prepared, source=source, now=utcnow(), if_match=expected, new=new
            )
        audit.note("MedicationRequest", result.record.id, result.record.patient)
        return result

    result = await rt.writes.run(write)
    if result.outcome in (Applied.CREATED, Applied.UPDATED) and result.record.role == "infusion":
        rt.request_history_pull(result.record.patient)
    return result


def expected_version(if_match: str | None, source: str) -> int | None:
    """The version ``If-Match`` names, on the FHIR base. On the EHR's channels it is the
    EHR's own version (HAPI's rest-hook delivery sends ``If-Match`` with it), which the
    source version already orders, so it is not a precondition on this server's versions."""
    if not if_match or source in EHR_SOURCES:
        return None
    return version_of_etag(if_match)


def local_bases(rt: Runtime, base: str | None) -> tuple[str, ...]:
    """FHIR bases whose absolute references name the orders' own patients."""
    return (rt.settings.ehr_base_url, base) if base else (rt.settings.ehr_base_url,)


def version_of_etag(etag: str, element: str = "If-Match") -> int:
    """``W/"3"`` (or ``"3"``, ``3``) -> 3; ``Invalid`` otherwise."""
    raw = etag.strip().removeprefix("W/").strip('"')
    if not raw.isdigit() or len(raw) > 18:
        raise Invalid(f'{element}: {etag!r} is not a version ETag such as W/"1"', element)
    return int(raw)


async def delete_order(
    rt: Runtime, order_id: str, *, source: str, if_match: str | None = None
) -> None:
    """Record that an order was deleted; the cached order stays, flagged as deleted."""
    expected = expected_version(if_match, source)

    def work() -> None:
        with write_transaction(rt.engine) as db:
            store.lock_orders(db, order_ids=[order_id])
            if expected is not None:
                check_version(db, order_id, expected)
            deleted = store.mark_deleted(db, order_id, now=utcnow())
            audit.note("MedicationRequest", order_id, deleted.patient if deleted else None)

    await run_sync(work)


def visible(record: OrderRecord | None, compartment: str | None) -> OrderRecord | None:
    """The order if the caller may see it: limited to one patient, others do not exist."""
    if record is None or (compartment is not None and record.patient != compartment):
        return None
    audit.note("MedicationRequest", record.id, record.patient)
    return record


async def read_order(rt: Runtime, order_id: str, compartment: str | None = None) -> OrderRecord:
    """The cached order (as served: this server's ``meta``); ``Gone`` once deleted."""

    def load() -> OrderRecord | None:
        with transaction(rt.engine) as db:
            return visible(store.get_order(db, order_id), compartment)

    record = await run_sync(load)
    if record is None:
        raise NotFound(f"MedicationRequest/{order_id} is not known")
    if record.deleted:
        raise Gone(f"MedicationRequest/{order_id} was deleted")
    return record


async def read_order_version(
    rt: Runtime, order_id: str, version_id: str, compartment: str | None = None
) -> OrderVersion:
    """One version of an order (vread); ``Gone`` for the version that deleted it."""
    if not version_id.isdigit() or len(version_id) > 18:
        raise NotFound(f"MedicationRequest/{order_id} has no version {version_id!r}", "vid")

    def load() -> OrderVersion | None:
        with transaction(rt.engine) as db:
            if visible(store.get_order(db, order_id), compartment) is None:
                return None
            return queries.get_order_version(db, order_id, int(version_id))

    version = await run_sync(load)
    if version is None:
        raise NotFound(f"MedicationRequest/{order_id}/_history/{version_id} is not known")
    if version.deleted:
        raise Gone(f"MedicationRequest/{order_id}/_history/{version_id} is a delete")
    return version


async def order_history(
    rt: Runtime, order_id: str, compartment: str | None = None
) -> list[OrderVersion]:
    """Every version of an order, newest first (``NotFound`` for an unknown order, or one
    of another patient than the caller's only one)."""

    def load() -> list[OrderVersion]:
        with transaction(rt.engine) as db:
            if visible(store.get_order(db, order_id), compartment) is None:
                return []
            return queries.order_history(db, order_id)

    versions = await run_sync(load)
    if not versions:
        raise NotFound(f"MedicationRequest/{order_id} is not known")
    return versions


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
            total, records = queries.list_orders(
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
            return OrderView.of(record, queries.linked_orders(db, record))

    view = await run_sync(load)
    if view is None:
        raise NotFound(f"order {order_id} is not in the cache")
    return view
