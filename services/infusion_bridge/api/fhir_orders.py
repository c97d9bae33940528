"""The service's own FHIR base for orders: ``/fhir/MedicationRequest`` read/create/update/delete.

The EHR pushes orders here; a rest-hook Subscription delivers here too (HAPI sends
``PUT {endpoint}/MedicationRequest/{id}`` and ``DELETE`` on delete).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from fhir_mappings.errors import MappingError
from fhir_mappings.operation_outcome import Issue

from ..clock import utcnow
from ..ehr.errors import EhrClientError, EhrError
from ..intake import prepare_order, remote_medication_refs, store_order
from ..store.db import session_scope, write_scope
from ..store.orders import Applied, ApplyResult, find_by_identifier, get_order, mark_deleted
from ..store.tables import OrderRow
from .errors import ApiError, fhir_response
from .fhir_io import read_resource, version_headers, write_response
from .state import AppState, app_state

Json = dict[str, Any]
router = APIRouter(prefix="/fhir", tags=["fhir"])
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def mapping_error(exc: MappingError, prefix: str = "") -> ApiError:
    """400 for structurally broken FHIR, 422 when valid FHIR breaks a business rule."""
    issues = [
        Issue(i.code, i.diagnostics, tuple(prefix + e for e in i.expression), i.severity)
        for i in exc.issues
    ]
    status = 400 if any(i.code == "structure" for i in issues) else 422
    return ApiError(status, issues)


async def resolve_medications(state: AppState, resource: Json) -> dict[str, Json]:
    """Fetch remote ``Medication`` resources an order points at (unresolvable ones stay out)."""
    found: dict[str, Json] = {}
    for ref in remote_medication_refs(resource):
        head, _, rid = ref.rpartition("/")  # "Medication/1" or ".../fhir/Medication/1"
        try:
            found[ref] = await state.ehr.read(head.rsplit("/", 1)[-1], rid)
        except EhrClientError:
            continue  # the mapper reports the reference as not found
        except EhrError as exc:
            raise ApiError.one(
                503, "transient", f"cannot resolve {ref} at the EHR now: {exc}"
            ) from exc
    return found


async def accept_order(
    state: AppState,
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
    medications = await resolve_medications(state, resource)

    def work() -> ApplyResult:
        try:
            prepared = prepare_order(
                resource, state.catalog, order_id=order_id, medications=medications
            )
        except MappingError as exc:
            raise mapping_error(exc) from exc
        with write_scope(state.engine) as session:
            if condition is not None:
                existing = find_existing(session, condition)
                if existing is not None:
                    return ApplyResult(Applied.MATCHED, existing)
            return store_order(session, prepared, source=source, now=utcnow())

    return await run_in_threadpool(work)


def find_existing(session: Session, condition: tuple[str | None, str]) -> OrderRow | None:
    """The order a conditional create matches: None, the one match, or 412 if several."""
    matches = find_by_identifier(session, *condition)
    if len(matches) > 1:
        raise ApiError.one(
            412, "duplicate", f"{len(matches)} orders match identifier {condition[1]!r}"
        )
    return matches[0] if matches else None


def parse_if_none_exist(header: str) -> tuple[str | None, str]:
    """``identifier=system|value`` (the only condition supported) -> (system, value)."""
    key, _, token = header.removeprefix("MedicationRequest?").partition("=")
    if key != "identifier" or not token:
        raise ApiError.one(
            400,
            "not-supported",
            "If-None-Exist supports only identifier=[system|]value",
            "If-None-Exist",
        )
    system, bar, value = token.partition("|")
    return (system, value) if bar else (None, system)


@router.post("/MedicationRequest", status_code=201)
async def create_order(request: Request) -> Response:
    """Create an order (the server assigns the id); conditional with ``If-None-Exist``."""
    state = app_state(request)
    resource = await read_resource(request, "MedicationRequest")
    result = await accept_order(
        state,
        resource,
        order_id=uuid.uuid4().hex,
        source=_source(request),
        if_none_exist=request.headers.get("if-none-exist"),
    )
    if result.outcome is Applied.MATCHED:
        return write_response(request, result.row, 200, "an order with that identifier exists")
    return write_response(request, result.row, 201, "order created")


@router.put("/MedicationRequest/{order_id}")
async def update_order(request: Request, order_id: str) -> Response:
    """Create or update an order under the EHR's id (also the rest-hook delivery path)."""
    _check_id(order_id)
    state = app_state(request)
    resource = await read_resource(request, "MedicationRequest")
    if "id" in resource and resource["id"] != order_id:
        raise ApiError.one(
            400, "invalid", f"body id {resource['id']!r} differs from URL id {order_id!r}", "id"
        )
    result = await accept_order(state, resource, order_id=order_id, source=_source(request))
    status = 201 if result.outcome is Applied.CREATED else 200
    issues = []
    if result.outcome is Applied.STALE:
        issues.append(
            Issue("informational", "an older version than the cached one: ignored", (), "warning")
        )
    return write_response(request, result.row, status, f"order {result.outcome.value}", issues)


@router.get("/MedicationRequest/{order_id}")
async def read_order(request: Request, order_id: str) -> Response:
    _check_id(order_id)
    state = app_state(request)

    def load() -> Any:
        with session_scope(state.engine) as session:
            return get_order(session, order_id)

    row = await run_in_threadpool(load)
    if row is None:
        raise ApiError.one(404, "not-found", f"MedicationRequest/{order_id} is not known")
    if row.deleted:
        raise ApiError.one(410, "deleted", f"MedicationRequest/{order_id} was deleted")
    return fhir_response(row.resource_json, 200, version_headers(request, row))


@router.delete("/MedicationRequest/{order_id}", status_code=204)
async def delete_order(request: Request, order_id: str) -> Response:
    """Record that the EHR deleted an order; the cached row stays, flagged as deleted."""
    _check_id(order_id)
    state = app_state(request)

    def work() -> None:
        with write_scope(state.engine) as session:
            mark_deleted(session, order_id, version_id=None, now=utcnow())

    await run_in_threadpool(work)
    return Response(status_code=204)


def _check_id(order_id: str) -> None:
    if not ID_PATTERN.fullmatch(order_id):
        raise ApiError.one(400, "invalid", f"{order_id!r} is not a valid FHIR id", "id")


def _source(request: Request) -> str:
    source: str = request.scope.get("infusion.source", "rest")
    return source
