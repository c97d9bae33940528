"""``POST /fhir``: an order Bundle (``batch`` or ``transaction`` of MedicationRequest entries)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from fhir_mappings.operation_outcome import operation_outcome

from ..access import Access, guard, need
from ..usecases.order_batches import BatchEntry, accept_order_bundle
from ..usecases.orders import Applied
from .deps import RuntimeDep
from .errors import fhir_response, status_for
from .fhir_io import base_url, check_formats, fhir_instant, read_resource

Json = dict[str, Any]
router = APIRouter(prefix="/fhir", tags=["fhir"], dependencies=[Depends(check_formats)])
Writing = Annotated[
    Access,
    Depends(
        guard(
            need("MedicationRequest", "cud", contexts=("system",)),
            interaction="transaction",
            resource_type="Bundle",
        )
    ),
]


@router.post("", include_in_schema=True)
@router.post("/", include_in_schema=False)
async def process_order_bundle(request: Request, rt: RuntimeDep, _: Writing) -> Response:
    """Process a batch or transaction Bundle of orders."""
    bundle = await read_resource(request, "Bundle")
    kind, entries = await accept_order_bundle(rt, bundle, base=base_url(request))
    base = base_url(request)
    return fhir_response(
        {
            "resourceType": "Bundle",
            "type": f"{kind}-response",
            "entry": [response_entry(base, e) for e in entries],
        }
    )


def response_entry(base: str, entry: BatchEntry) -> Json:
    """One ``Bundle.entry`` of the batch-response or transaction-response."""
    if entry.error is not None:
        outcome = operation_outcome(entry.error.issues)
        return {"response": {"status": _status(status_for(entry.error)), "outcome": outcome}}
    status = 201 if entry.outcome is Applied.CREATED else 204 if entry.method == "DELETE" else 200
    response: Json = {"status": _status(status)}
    item: Json = {"response": response}
    record = entry.record
    if record is not None:
        response["location"] = f"MedicationRequest/{record.id}/_history/{record.version_id}"
        response["etag"] = f'W/"{record.version_id}"'
        response["lastModified"] = fhir_instant(record.last_updated)
        item["fullUrl"] = f"{base}/MedicationRequest/{record.id}"
        if entry.method == "GET":
            item["resource"] = record.resource
    return item


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"
