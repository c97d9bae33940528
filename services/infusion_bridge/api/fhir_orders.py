"""The service's FHIR base for orders: ``/fhir/MedicationRequest`` read/create/update/delete.

The EHR pushes orders here; a rest-hook Subscription delivers the same way under
``/hooks/ehr`` (HAPI sends ``PUT {endpoint}/MedicationRequest/{id}`` and ``DELETE``), so
``hook_router`` serves the same update and delete handlers (token or the hook's secret).
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..access import Access, guard, need, rest_hook_caller
from ..domain.errors import Invalid, Issue
from ..usecases import orders
from .deps import RuntimeDep
from .errors import fhir_response
from .fhir_io import read_resource, version_headers, write_response

router = APIRouter(prefix="/fhir", tags=["fhir"])
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
STALE = Issue("informational", "an older version than the cached one: ignored", (), "warning")
# Orders come from the EHR: writes need a backend (system/) token, or the rest-hook's secret.
Creating = Annotated[
    Access,
    Depends(guard(need("MedicationRequest", "c", contexts=("system",)), interaction="create")),
]
Updating = Annotated[
    Access,
    Depends(guard(need("MedicationRequest", "cu", contexts=("system",)), interaction="update")),
]
Deleting = Annotated[
    Access,
    Depends(guard(need("MedicationRequest", "d", contexts=("system",)), interaction="delete")),
]
Reading = Annotated[
    Access,
    Depends(
        guard(need("MedicationRequest", "r", roles=("nurse", "clinician")), interaction="read")
    ),
]


@router.post("/MedicationRequest", status_code=201)
async def create_order(request: Request, rt: RuntimeDep, _: Creating) -> Response:
    """Create an order (the server assigns the id); conditional with ``If-None-Exist``."""
    resource = await read_resource(request, "MedicationRequest")
    result = await orders.accept_order(
        rt,
        resource,
        order_id=uuid.uuid4().hex,
        source=order_source(request),
        if_none_exist=request.headers.get("if-none-exist"),
    )
    if result.outcome is orders.Applied.MATCHED:
        return write_response(request, result.record, 200, "an order with that identifier exists")
    return write_response(request, result.record, 201, "order created")


@router.put("/MedicationRequest/{order_id}")
async def update_order(request: Request, order_id: str, rt: RuntimeDep, _: Updating) -> Response:
    """Create or update an order under the EHR's id (also the rest-hook delivery path)."""
    check_id(order_id)
    resource = await read_resource(request, "MedicationRequest")
    if "id" in resource and resource["id"] != order_id:
        raise Invalid(f"body id {resource['id']!r} differs from URL id {order_id!r}", "id")
    result = await orders.accept_order(
        rt, resource, order_id=order_id, source=order_source(request)
    )
    status = 201 if result.outcome is orders.Applied.CREATED else 200
    issues = [STALE] if result.outcome is orders.Applied.STALE else []
    return write_response(request, result.record, status, f"order {result.outcome.value}", issues)


@router.get("/MedicationRequest/{order_id}")
async def read_order(request: Request, order_id: str, rt: RuntimeDep, access: Reading) -> Response:
    """The order as the EHR sent it (410 once deleted)."""
    check_id(order_id)
    record = await orders.read_order(rt, order_id, access.compartment)
    return fhir_response(record.resource, 200, version_headers(request, record))


@router.delete("/MedicationRequest/{order_id}", status_code=204)
async def delete_order(order_id: str, rt: RuntimeDep, _: Deleting) -> Response:
    """Record that the EHR deleted an order; the cached order stays, flagged as deleted."""
    check_id(order_id)
    await orders.delete_order(rt, order_id)
    return Response(status_code=204)


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
