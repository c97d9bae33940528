"""``POST /fhir`` with a ``batch`` or ``transaction`` Bundle of MedicationRequest entries.

A transaction is all-or-nothing: every entry is mapped before anything is written, and
one bad entry rejects the whole Bundle with issues naming ``Bundle.entry[i]...``. In a
batch each entry stands alone and gets its own ``response`` (with an outcome on failure).
Entries: ``POST MedicationRequest`` (optionally ``ifNoneExist``), ``PUT MedicationRequest/{id}``,
``DELETE MedicationRequest/{id}``, ``GET MedicationRequest/{id}``; ``urn:uuid`` fullUrls of
created entries may be referenced by other entries (e.g. a premed's ``basedOn``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from fhir_mappings.errors import MappingError
from fhir_mappings.operation_outcome import Issue, operation_outcome

from ..clock import utcnow
from ..domain.catalog import DrugCatalog
from ..intake import PreparedOrder, prepare_order, store_order
from ..store.db import session_scope, write_scope
from ..store.orders import Applied, get_order, mark_deleted
from ..store.tables import OrderRow
from .errors import ApiError, fhir_response
from .fhir_io import base_url, check_type, read_resource
from .fhir_orders import (
    ID_PATTERN,
    find_existing,
    mapping_error,
    parse_if_none_exist,
    resolve_medications,
)
from .state import app_state

Json = dict[str, Any]
router = APIRouter(prefix="/fhir", tags=["fhir"])


@dataclass
class Entry:
    """One Bundle entry on its way through: parsed request, then result or error."""

    index: int
    method: str
    order_id: str | None = None
    resource: Json | None = None
    condition: tuple[str | None, str] | None = None
    prepared: PreparedOrder | None = None
    error: ApiError | None = None
    status: int = 200
    row: OrderRow | None = None
    issues: list[Issue] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


@router.post("", include_in_schema=True)
@router.post("/", include_in_schema=False)
async def process_bundle(request: Request) -> Response:
    """Process a batch or transaction Bundle of orders."""
    state = app_state(request)
    bundle = await read_resource(request, "Bundle")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise ApiError.one(
            400, "invalid", "Bundle.type must be batch or transaction", "Bundle.type"
        )
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise ApiError.one(400, "structure", "Bundle.entry must be an array", "Bundle.entry")
    transaction = kind == "transaction"
    entries = [_parse_entry(i, e) for i, e in enumerate(raw_entries)]
    conditional = [e for e in entries if e.error is None and e.condition is not None]
    if conditional:
        await run_in_threadpool(_match_conditions, state.engine, conditional)
    if transaction:
        _resolve_urns(entries, raw_entries)
    for entry in entries:
        if entry.error is None and entry.resource is not None:
            try:
                medications = await resolve_medications(state, entry.resource)
            except ApiError as exc:
                entry.error = exc
                continue
            entry.prepared = _prepare(entry, state.catalog, medications)
    failed = [e.error for e in entries if e.error is not None]
    if transaction and failed:
        raise ApiError(max(f.status_code for f in failed), [i for f in failed for i in f.issues])

    def write() -> None:
        with write_scope(state.engine) as session:
            now = utcnow()
            for entry in entries:
                if entry.error is None:
                    _apply(session, entry, now)
            failed = [e.error for e in entries if e.error is not None]
            if transaction and failed:  # found while writing: undo it all (rolls back)
                raise ApiError(
                    max(f.status_code for f in failed), [i for f in failed for i in f.issues]
                )

    await run_in_threadpool(write)
    return fhir_response(_response_bundle(request, kind, entries))


def _parse_entry(index: int, raw: Any) -> Entry:
    entry = Entry(index=index, method="")
    if not isinstance(raw, dict):
        entry.error = ApiError.one(400, "structure", "entry must be an object", entry.where)
        return entry
    req = raw.get("request")
    if not isinstance(req, dict):
        entry.error = ApiError.one(
            400, "structure", "request must be an object", f"{entry.where}.request"
        )
        return entry
    method = str(req.get("method") or "").upper()
    url = str(req.get("url") or "")
    entry.method = method
    path = url.split("?", 1)[0].strip("/")
    parts = path.split("/")
    if not method or not url:
        entry.error = ApiError.one(
            400, "required", "request.method and request.url are required", f"{entry.where}.request"
        )
    elif parts[0] != "MedicationRequest":
        entry.error = ApiError.one(
            400,
            "not-supported",
            f"only MedicationRequest entries are accepted, not {parts[0] or url!r}",
            f"{entry.where}.request.url",
        )
    elif method == "POST" and len(parts) == 1:
        entry.order_id = uuid.uuid4().hex
        condition = req.get("ifNoneExist")
        if condition is not None:
            try:
                if not isinstance(condition, str):
                    raise ApiError.one(400, "structure", "ifNoneExist must be a string")
                entry.condition = parse_if_none_exist(condition)
            except ApiError as exc:
                entry.error = ApiError.one(
                    exc.status_code,
                    exc.issues[0].code,
                    exc.issues[0].diagnostics,
                    f"{entry.where}.request.ifNoneExist",
                )
    elif method in ("PUT", "DELETE", "GET") and len(parts) == 2 and ID_PATTERN.fullmatch(parts[1]):
        entry.order_id = parts[1]
    else:
        entry.error = ApiError.one(
            400, "not-supported", f"{method} {url} is not supported", f"{entry.where}.request"
        )
    if entry.error is None and method in ("POST", "PUT"):
        resource = raw.get("resource")
        if not isinstance(resource, dict):
            entry.error = ApiError.one(
                400, "required", "a resource is required", f"{entry.where}.resource"
            )
        else:
            try:
                check_type(resource, "MedicationRequest", f"{entry.where}.resource.")
            except ApiError as exc:
                entry.error = exc
            else:
                if method == "PUT" and resource.get("id") not in (None, entry.order_id):
                    entry.error = ApiError.one(
                        400,
                        "invalid",
                        "resource id differs from request.url",
                        f"{entry.where}.resource.id",
                    )
                entry.resource = resource
    return entry


def _resolve_urns(entries: list[Entry], raw_entries: list[Any]) -> None:
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


def _prepare(
    entry: Entry, catalog: DrugCatalog, medications: dict[str, Json]
) -> PreparedOrder | None:
    assert entry.resource is not None
    try:
        return prepare_order(
            entry.resource, catalog, order_id=entry.order_id, medications=medications
        )
    except MappingError as exc:
        prefix = f"{entry.where}.resource"
        err = mapping_error(exc)
        err.issues = [
            Issue(
                i.code,
                i.diagnostics,
                tuple(prefix + e.removeprefix("MedicationRequest") for e in i.expression)
                or (prefix,),
                i.severity,
            )
            for i in err.issues
        ]
        entry.error = err
        return None


def _match_conditions(engine: Engine, entries: list[Entry]) -> None:
    """Give conditional creates that match an existing order that order's id, so that
    ``urn:uuid`` references to them point at it (checked again while writing)."""
    with session_scope(engine) as session:
        for entry in entries:
            assert entry.condition is not None
            try:
                existing = find_existing(session, entry.condition)
            except ApiError as exc:
                entry.error = exc
                continue
            if existing is not None:
                entry.order_id = existing.id


def _apply(session: Session, entry: Entry, now: Any) -> None:
    assert entry.order_id is not None
    if entry.method == "GET":
        entry.row = get_order(session, entry.order_id)
        if entry.row is None or entry.row.deleted:
            entry.error = ApiError.one(
                404, "not-found", f"MedicationRequest/{entry.order_id} is not known"
            )
        return
    if entry.method == "DELETE":
        mark_deleted(session, entry.order_id, version_id=None, now=now)
        entry.status = 204
        return
    if entry.condition is not None:
        try:
            existing = find_existing(session, entry.condition)
        except ApiError as exc:
            entry.error = exc
            return
        if existing is not None:
            entry.row, entry.status = existing, 200
            return
    assert entry.prepared is not None
    result = store_order(session, entry.prepared, source="bundle", now=now)
    entry.row = result.row
    entry.status = 201 if result.outcome is Applied.CREATED else 200


def _response_bundle(request: Request, kind: str, entries: list[Entry]) -> Json:
    out: list[Json] = []
    base = base_url(request)
    for entry in entries:
        if entry.error is not None:
            status = entry.error.status_code
            out.append(
                {
                    "response": {
                        "status": f"{status} {HTTPStatus(status).phrase}",
                        "outcome": operation_outcome(entry.error.issues),
                    }
                }
            )
            continue
        response: Json = {"status": f"{entry.status} {HTTPStatus(entry.status).phrase}"}
        item: Json = {"response": response}
        if entry.row is not None:
            row = entry.row
            response["location"] = f"MedicationRequest/{row.id}/_history/{row.version_id}"
            response["etag"] = f'W/"{row.version_id}"'
            response["lastModified"] = row.last_updated.isoformat()
            item["fullUrl"] = f"{base}/MedicationRequest/{row.id}"
            if entry.method == "GET":
                item["resource"] = row.resource_json
        out.append(item)
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": out}
