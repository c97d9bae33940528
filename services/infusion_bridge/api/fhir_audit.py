"""``GET /fhir/AuditEvent``: the audit trail for security officers, as FHIR AuditEvents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from fhir_mappings import search_values
from fhir_mappings.audit_event import audit_event

from ..access import Access, guard, need
from ..domain.errors import Invalid
from ..domain.orders import patient_reference
from ..usecases.audit import AuditQuery, search_audit
from .deps import RuntimeDep
from .errors import fhir_response
from .fhir_io import check_formats
from .fhir_search import Paging, Search, searchset

router = APIRouter(prefix="/fhir", tags=["fhir"], dependencies=[Depends(check_formats)])
Auditing = Annotated[
    Access,
    Depends(
        guard(
            need("AuditEvent", "rs", contexts=("user",), roles=("security-officer",)),
            interaction="search",
        )
    ),
]
SEARCH_PARAMS = {"patient": "reference", "agent": "reference", "date": "date"}
"""AuditEvent search parameters (the CapabilityStatement's); ``agent`` is a user's id or name."""
PARAMS = {*SEARCH_PARAMS, "_count", "_offset", "_format"}


@router.get("/AuditEvent")
async def search_audit_events(request: Request, rt: RuntimeDep, _: Auditing) -> Response:
    """Audit records by ``patient``, ``agent`` (user id or name) and ``date``, newest first."""
    query = parse_audit_query(request)
    total, records = await search_audit(rt, query)
    system = rt.settings.identifier_system
    events = [audit_event(r, issuer=rt.settings.auth_issuer, local_system=system) for r in records]
    used = [(k, v) for k, v in request.query_params.multi_items() if k not in ("_offset", "_count")]
    paging = Paging(query.count, query.offset)
    search = Search("AuditEvent", [*used, ("_count", str(query.count))], [], paging)
    return fhir_response(searchset(request, search, total, events))


def parse_audit_query(request: Request) -> AuditQuery:
    params = request.query_params
    for name in params:
        if name not in PARAMS:
            raise Invalid.because(
                "not-supported",
                f"unknown search parameter {name!r} for AuditEvent; supported: "
                + ", ".join(sorted(PARAMS - {"_format"})),
                name,
            )
    since: datetime | None = None
    before: datetime | None = None
    for raw in params.getlist("date"):
        try:
            bounds = search_values.date_bounds(raw)
        except ValueError as exc:
            raise Invalid(f"date: {exc}", "date") from exc
        for prefix, instant in bounds:
            if prefix in ("ge", "gt", "eq"):
                since = instant
            else:
                before = instant
    patient = params.get("patient")
    return AuditQuery(
        patient=patient_reference(patient) if patient else None,
        agent=params.get("agent"),
        since=since,
        before=before,
        offset=int_param(request, "_offset", 0, 0, 1_000_000),
        count=int_param(request, "_count", 50, 1, 200),
    )


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"{name} must be a whole number {low}..{high}", name)
    return int(raw)
