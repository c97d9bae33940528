"""``GET /fhir/AuditEvent``: the audit trail for security officers, as FHIR AuditEvents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from fhir_mappings.audit_event import audit_event

from ..access import Access, guard, need
from ..domain.errors import Invalid
from ..domain.orders import patient_reference
from ..read_models import SearchPage
from ..usecases.audit import AuditQuery, search_audit
from .deps import RuntimeDep
from .errors import fhir_response
from .fhir_search import int_param, parse_date_param, searchset

router = APIRouter(prefix="/fhir", tags=["fhir"])
Auditing = Annotated[
    Access,
    Depends(
        guard(
            need("AuditEvent", "rs", contexts=("user",), roles=("security-officer",)),
            interaction="search",
        )
    ),
]
PARAMS = {"patient", "agent", "date", "_count", "_offset", "_format"}


@router.get("/AuditEvent")
async def search_audit_events(request: Request, rt: RuntimeDep, _: Auditing) -> Response:
    """Audit records by ``patient``, ``agent`` (user id or name) and ``date``, newest first."""
    query = parse_audit_query(request)
    total, records = await search_audit(rt, query)
    system = rt.settings.identifier_system
    events = [audit_event(r, issuer=rt.settings.auth_issuer, local_system=system) for r in records]
    page = SearchPage(total, events)
    return fhir_response(searchset(request, "AuditEvent", query.offset, query.count, page))


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
        for prefix, instant in parse_date_param("date", raw):
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
