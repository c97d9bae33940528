"""Accept an order Bundle: a ``batch`` or ``transaction`` of MedicationRequest entries.

A transaction is all-or-nothing: every entry is mapped before anything is written, and
one bad entry refuses the whole Bundle (``TransactionRefused``) with issues naming
``Bundle.entry[i]...``. In a batch each entry stands alone and gets its own result.
Entries: ``POST MedicationRequest`` (optionally ``ifNoneExist``), ``PUT MedicationRequest/{id}``
and ``DELETE MedicationRequest/{id}`` (optionally ``ifMatch``), ``GET MedicationRequest/{id}``;
in a transaction, ``urn:uuid`` fullUrls of created entries may be referenced by other
entries (e.g. a premed's ``basedOn``). A placeholder reference that names no entry (and any
in a batch, whose entries stand alone) is refused.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anyio.to_thread import run_sync
from sqlmodel import Session

from fhir_mappings.errors import MappingError

from ..clock import utcnow
from ..domain.errors import DomainError, Invalid, NotFound, TransactionRefused
from ..read_models import OrderRecord
from ..runtime import Runtime
from ..store import audit
from ..store.db import transaction, write_transaction
from ..store.orders import Applied, get_order, mark_deleted
from .order_intake import (
    PreparedOrder,
    check_version,
    claim_orders,
    prepare_order,
    refusal,
    resolve_medications,
    store_order,
)
from .order_search import OrderCriteria, find_existing, read_if_none_exist
from .orders import local_bases, version_of_etag

Json = dict[str, Any]
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass
class BatchEntry:
    """One entry on its way through: parsed request, then what became of it."""

    index: int
    method: str
    order_id: str | None = None
    resource: Json | None = None
    condition: OrderCriteria | None = None
    if_match: int | None = None
    prepared: PreparedOrder | None = None
    error: DomainError | None = None
    outcome: Applied | None = None
    """What the write did (None for GET and DELETE)."""
    record: OrderRecord | None = None

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


async def accept_order_bundle(
    rt: Runtime, bundle: Json, *, base: str | None = None
) -> tuple[str, list[BatchEntry]]:
    """Process the Bundle; returns its type and each entry's result, in order. ``base`` is
    this FHIR base's URL (absolute references in conditions)."""
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise Invalid("Bundle.type must be batch or transaction", "Bundle.type")
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise Invalid.because("structure", "Bundle.entry must be an array", "Bundle.entry")
    transaction_ = kind == "transaction"
    bases = local_bases(rt, base)
    entries = [_parse_entry(i, e, bases) for i, e in enumerate(raw_entries)]
    conditional = [e for e in entries if e.error is None and e.condition is not None]
    if conditional:
        await run_sync(_match_conditions, rt, conditional)
    if transaction_:
        _resolve_urns(entries, raw_entries)
    for entry in entries:
        if entry.error is None and entry.resource is not None:
            await _prepare(rt, entry)
    _refuse_if_failed(transaction_, entries)

    def write() -> None:
        with write_transaction(rt.engine) as db:
            live = [e for e in entries if e.error is None]
            claim_orders(
                db,
                [e.prepared for e in live if e.prepared is not None],
                conditions=[e.condition for e in live if e.condition is not None],
                order_ids=[e.order_id for e in live if e.method == "DELETE" and e.order_id],
            )
            now = utcnow()
            for entry in entries:
                if entry.error is None:
                    _apply(db, entry, now)
                if entry.record is not None:
                    audit.note("MedicationRequest", entry.record.id, entry.record.patient)
            _refuse_if_failed(transaction_, entries)  # found while writing: rolls back

    await run_sync(write)
    return kind, entries


def _refuse_if_failed(transaction_: bool, entries: list[BatchEntry]) -> None:
    failed = [e.error for e in entries if e.error is not None]
    if transaction_ and failed:
        raise TransactionRefused(failed)


def _parse_entry(index: int, raw: Any, bases: tuple[str, ...]) -> BatchEntry:
    entry = BatchEntry(index=index, method="")
    try:
        _parse_request(entry, raw, bases)
        if entry.method in ("POST", "PUT"):
            entry.resource = _entry_resource(entry, raw)
    except DomainError as exc:
        entry.error = exc
    return entry


def _parse_request(entry: BatchEntry, raw: Any, bases: tuple[str, ...]) -> None:
    if not isinstance(raw, dict):
        raise Invalid.because("structure", "entry must be an object", entry.where)
    req = raw.get("request")
    if not isinstance(req, dict):
        raise Invalid.because("structure", "request must be an object", f"{entry.where}.request")
    method = entry.method = str(req.get("method") or "").upper()
    url = str(req.get("url") or "")
    parts = url.split("?", 1)[0].strip("/").split("/")
    if not method or not url:
        raise Invalid.because(
            "required", "request.method and request.url are required", f"{entry.where}.request"
        )
    if parts[0] != "MedicationRequest":
        raise Invalid.because(
            "not-supported",
            f"only MedicationRequest entries are accepted, not {parts[0] or url!r}",
            f"{entry.where}.request.url",
        )
    if method == "POST" and len(parts) == 1:
        entry.order_id = uuid.uuid4().hex
        condition = req.get("ifNoneExist")
        if condition is not None:
            element = f"{entry.where}.request.ifNoneExist"
            if not isinstance(condition, str):
                raise Invalid.because("structure", "ifNoneExist must be a string", element)
            entry.condition = read_if_none_exist(condition, local_bases=bases, element=element)
    elif method in ("PUT", "DELETE", "GET") and len(parts) == 2 and ID_PATTERN.fullmatch(parts[1]):
        entry.order_id = parts[1]
        if_match = req.get("ifMatch")
        if if_match is not None and method in ("PUT", "DELETE"):
            entry.if_match = version_of_etag(str(if_match), f"{entry.where}.request.ifMatch")
    else:
        raise Invalid.because(
            "not-supported", f"{method} {url} is not supported", f"{entry.where}.request"
        )


def _entry_resource(entry: BatchEntry, raw: Json) -> Json:
    resource = raw.get("resource")
    if not isinstance(resource, dict):
        raise Invalid.because("required", "a resource is required", f"{entry.where}.resource")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        raise Invalid.because(
            "required", "resourceType is missing", f"{entry.where}.resource.resourceType"
        )
    if rtype != "MedicationRequest":
        raise Invalid(
            f"expected a MedicationRequest, got a {rtype}", f"{entry.where}.resource.resourceType"
        )
    if entry.method == "PUT" and resource.get("id") != entry.order_id:
        raise Invalid(
            "an update's resource must carry the id of request.url (R4 http.html#update)",
            f"{entry.where}.resource.id",
        )
    return resource


def _resolve_urns(entries: list[BatchEntry], raw_entries: list[Any]) -> None:
    """Give created entries their ids and rewrite ``urn:uuid`` references to them."""
    urns: dict[str, str] = {}
    for entry, raw in zip(entries, raw_entries, strict=True):
        full_url = raw.get("fullUrl") if isinstance(raw, dict) else None
        if isinstance(full_url, str) and full_url.startswith("urn:") and entry.order_id:
            urns[full_url] = f"MedicationRequest/{entry.order_id}"
    if not urns:
        return
    for entry in entries:
        if entry.resource is not None:
            entry.resource = _rewrite(entry.resource, urns)


def _rewrite(node: Any, urns: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v, urns) for k, v in node.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in urns:
            out["reference"] = urns[ref]
        return out
    if isinstance(node, list):
        return [_rewrite(v, urns) for v in node]
    return node


async def _prepare(rt: Runtime, entry: BatchEntry) -> None:
    assert entry.resource is not None
    try:
        medications = await resolve_medications(rt.ehr, entry.resource)
        entry.prepared = prepare_order(
            entry.resource, rt.catalog, order_id=entry.order_id, medications=medications
        )
    except MappingError as exc:
        entry.error = refusal(exc, prefix=f"{entry.where}.resource")
    except DomainError as exc:
        entry.error = exc


def _match_conditions(rt: Runtime, entries: list[BatchEntry]) -> None:
    """Give conditional creates that match an existing order that order's id, so that
    ``urn:uuid`` references to them point at it (checked again while writing)."""
    with transaction(rt.engine) as db:
        for entry in entries:
            assert entry.condition is not None
            try:
                existing = find_existing(db, entry.condition)
            except DomainError as exc:
                entry.error = exc
                continue
            if existing is not None:
                entry.order_id = existing.id


def _apply(db: Session, entry: BatchEntry, now: datetime) -> None:
    assert entry.order_id is not None
    if entry.method == "GET":
        entry.record = get_order(db, entry.order_id)
        if entry.record is None or entry.record.deleted:
            entry.error = NotFound(f"MedicationRequest/{entry.order_id} is not known")
        return
    if entry.method == "DELETE":
        try:
            if entry.if_match is not None:
                check_version(db, entry.order_id, entry.if_match)
        except DomainError as exc:
            entry.error = exc
            return
        deleted = mark_deleted(db, entry.order_id, now=now)
        audit.note("MedicationRequest", entry.order_id, deleted.patient if deleted else None)
        return
    if entry.condition is not None:
        try:
            existing = find_existing(db, entry.condition)
        except DomainError as exc:
            entry.error = exc
            return
        if existing is not None:
            entry.record, entry.outcome = existing, Applied.MATCHED
            return
    assert entry.prepared is not None
    try:
        result = store_order(db, entry.prepared, source="bundle", now=now, if_match=entry.if_match)
    except DomainError as exc:
        entry.error = exc
        return
    entry.record, entry.outcome = result.record, result.outcome
