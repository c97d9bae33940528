"""The service's FHIR base for orders: ``/fhir/MedicationRequest`` read, vread, history,
create, update, delete and search.

The EHR pushes orders here; a rest-hook Subscription delivers the same way under
``/hooks/ehr`` (HAPI sends ``PUT {endpoint}/MedicationRequest/{id}`` and ``DELETE``), so
``hook_router`` serves the same update and delete handlers (token or the hook's secret).
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from ..access import Access, guard, need, rest_hook_caller
from ..domain.errors import Invalid, Issue
from ..usecases import order_search, orders
from .deps import RuntimeDep, get_runtime
from .errors import fhir_response
from .fhir_history import history_bundle
from .fhir_io import base_url, check_formats, read_headers, read_resource, write_response
from .fhir_search import order_criteria, read_search, searchset
from .plain_route import PlainRoute

router = APIRouter(prefix="/fhir", tags=["fhir"], dependencies=[Depends(check_formats)])
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
STALE = Issue("informational", "an older version than the cached one: ignored", (), "warning")
# Orders come from the EHR: writes need a backend (system/) token, or the rest-hook's secret.
CREATING = guard(need("MedicationRequest", "c", contexts=("system",)), interaction="create")
Updating = Annotated[
    Access,
    Depends(guard(need("MedicationRequest", "cu", contexts=("system",)), interaction="update")),
]
Deleting = Annotated[
    Access,
    Depends(guard(need("MedicationRequest", "d", contexts=("system",)), interaction="delete")),
]
STAFF = ("nurse", "clinician")
Reading = Annotated[
    Access, Depends(guard(need("MedicationRequest", "r", roles=STAFF), interaction="read"))
]
ReadingVersion = Annotated[
    Access, Depends(guard(need("MedicationRequest", "r", roles=STAFF), interaction="vread"))
]
ReadingHistory = Annotated[
    Access,
    Depends(guard(need("MedicationRequest", "r", roles=STAFF), interaction="history-instance")),
]
Searching = Annotated[
    Access, Depends(guard(need("MedicationRequest", "rs", roles=STAFF), interaction="search"))
]


# The busiest route, the EHR's new orders, runs its checks itself and is called without
# FastAPI's resolver (``PlainRoute``): each dependency was one more pass of it, and the whole
# about a tenth of an order's CPU (docs/benchmarks.md). The same checks in the same order as
# on ``router``: the formats, then the guard. It is added to the app itself, ahead of every
# router (an included router costs each request one more matching pass).
def add_intake_route(app: FastAPI) -> None:
    app.router.add_api_route(
        "/fhir/MedicationRequest",
        create_order,
        methods=["POST"],
        status_code=201,
        tags=["fhir"],
        route_class_override=PlainRoute,
    )


async def create_order(request: Request) -> Response:
    """Create an order (the server assigns the id); conditional with ``If-None-Exist`` (or
    search parameters on the URL, as fhirpy's ``get_or_create`` sends them)."""
    await check_formats(request)
    await CREATING(request)
    rt = get_runtime(request)
    resource = await read_resource(request, "MedicationRequest")
    result = await orders.accept_order(
        rt,
        resource,
        order_id=None,
        source=order_source(request),
        if_none_exist=create_condition(request),
        base=base_url(request),
    )
    if result.outcome is orders.Applied.MATCHED:
        return write_response(request, result.record, 200, "an order with that identifier exists")
    return write_response(request, result.record, 201, "order created")


@router.put("/MedicationRequest/{order_id}")
async def update_order(request: Request, order_id: str, rt: RuntimeDep, _: Updating) -> Response:
    """Create or update an order under the client's id (also the rest-hook delivery path);
    ``If-Match`` makes it version-aware (412 when the order has moved on)."""
    check_id(order_id)
    resource = await read_resource(request, "MedicationRequest")
    if resource.get("id") != order_id:
        raise Invalid(f"the body's id must be the URL's id {order_id!r} (R4 update)", "id")
    result = await orders.accept_order(
        rt,
        resource,
        order_id=order_id,
        source=order_source(request),
        if_match=request.headers.get("if-match"),
    )
    status = 201 if result.outcome is orders.Applied.CREATED else 200
    issues = [STALE] if result.outcome is orders.Applied.STALE else []
    return write_response(request, result.record, status, f"order {result.outcome.value}", issues)


@router.get("/MedicationRequest/{order_id}")
async def read_order(order_id: str, rt: RuntimeDep, access: Reading) -> Response:
    """The order as last stored, with this server's ``meta`` (410 once deleted)."""
    check_id(order_id)
    record = await orders.read_order(rt, order_id, access.compartment)
    return fhir_response(record.resource, 200, read_headers(record.version_id, record.last_updated))


@router.get("/MedicationRequest/{order_id}/_history/{version_id}")
async def read_order_version(
    order_id: str, version_id: str, rt: RuntimeDep, access: ReadingVersion
) -> Response:
    """One version of an order (vread; 410 for the version that deleted it)."""
    check_id(order_id)
    version = await orders.read_order_version(rt, order_id, version_id, access.compartment)
    return fhir_response(
        version.resource, 200, read_headers(version.version_id, version.last_updated)
    )


@router.get("/MedicationRequest/{order_id}/_history")
async def order_history(
    request: Request, order_id: str, rt: RuntimeDep, access: ReadingHistory
) -> Response:
    """Every version of an order, newest first, as a ``history`` Bundle."""
    check_id(order_id)
    versions = await orders.order_history(rt, order_id, access.compartment)
    return fhir_response(history_bundle(request, versions))


@router.delete("/MedicationRequest/{order_id}", status_code=204)
async def delete_order(request: Request, order_id: str, rt: RuntimeDep, _: Deleting) -> Response:
    """Record that an order was deleted (it stays, flagged); ``If-Match`` is honoured."""
    check_id(order_id)
    await orders.delete_order(
        rt, order_id, source=order_source(request), if_match=request.headers.get("if-match")
    )
    return Response(status_code=204)


@router.get("/MedicationRequest")
@router.post("/MedicationRequest/_search")
async def search_orders(request: Request, rt: RuntimeDep, access: Searching) -> Response:
    """Search orders by ``_id``, ``identifier``, ``patient``/``subject``, ``status``."""
    search = await read_search(request, "MedicationRequest")
    total, records = await order_search.search_orders(
        rt,
        order_criteria(request, search),
        offset=search.paging.offset,
        count=search.paging.count,
        compartment=access.compartment,
    )
    return fhir_response(searchset(request, search, total, [r.resource for r in records]))


def create_condition(request: Request) -> str | None:
    """``If-None-Exist``, else the search parameters on the POST's URL, if any."""
    header = request.headers.get("if-none-exist")
    if header is not None:
        return header
    if not request.scope.get("query_string"):
        return None
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "_format"]
    return urlencode(pairs) if pairs else None


def check_id(order_id: str) -> None:
    if not ID_PATTERN.fullmatch(order_id):
        raise Invalid(f"{order_id!r} is not a valid FHIR id", "id")


def order_source(request: Request) -> str:
    """``subscription`` when the rest-hook router took the request, else ``rest``."""
    source: str = request.scope.get("infusion.source", "rest")
    return source


hook_router = APIRouter(
    prefix="/hooks/ehr", tags=["subscription"], dependencies=[Depends(rest_hook_caller)]
)
hook_router.add_api_route(
    "/MedicationRequest/{order_id}",
    update_order,
    methods=["PUT"],
    name="hook_update",
    summary="A Subscription delivery with payload: create or update the cached order",
)
hook_router.add_api_route(
    "/MedicationRequest/{order_id}",
    delete_order,
    methods=["DELETE"],
    status_code=204,
    name="hook_delete",
    summary="A Subscription delete notification: record it",
)
