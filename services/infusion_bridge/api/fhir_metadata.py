"""``GET /fhir/metadata``: the CapabilityStatement of the service's own FHIR base."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from .. import __version__
from .errors import fhir_response
from .fhir_audit import SEARCH_PARAMS as AUDIT_SEARCH_PARAMS
from .fhir_io import base_url, check_formats
from .fhir_records import READABLE
from .fhir_search import DEFAULT_COUNT, MAX_COUNT, SEARCH_PARAMS

router = APIRouter(prefix="/fhir", tags=["fhir"], dependencies=[Depends(check_formats)])


def capability_statement(base: str) -> dict[str, Any]:
    """What this base does, exactly: the interop suite (tests/interop) checks each claim."""
    orders: dict[str, Any] = {
        "type": "MedicationRequest",
        "interaction": [
            {"code": c}
            for c in (
                "read",
                "vread",
                "update",
                "delete",
                "history-instance",
                "create",
                "search-type",
            )
        ],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": _search_params("MedicationRequest"),
        "documentation": (
            "Orders. Updates ignore meta.versionId/lastUpdated in the body and honour "
            "If-Match (412 when stale). If-None-Exist takes the search parameters listed "
            "here. Rest-hook deliveries of the EHR (/hooks/ehr) keep the EHR's version "
            "as the source version that orders them."
        ),
    }
    resources = [orders]
    for rtype in READABLE:
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": "read"}, {"code": "vread"}],
            "versioning": "versioned",
            "documentation": "A finished session's record: one version each, never changed.",
        }
        if rtype in SEARCH_PARAMS:
            entry["interaction"].append({"code": "search-type"})
            entry["searchParam"] = _search_params(rtype)
        resources.append(entry)
    resources.append(
        {
            "type": "AuditEvent",
            "interaction": [{"code": "search-type"}],
            "searchParam": [
                {"name": name, "type": kind} for name, kind in AUDIT_SEARCH_PARAMS.items()
            ],
            "documentation": (
                "The audit trail, for security officers (user/AuditEvent.rs and the "
                "security-officer role); newest first; agent is a user's id or name; "
                "_count 1..200 and _offset, no other result parameters."
            ),
        }
    )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-27",
        "kind": "instance",
        "software": {"name": "Infusion Bridge", "version": __version__},
        "implementation": {"description": "Infusion Bridge FHIR base", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "JSON only: other formats get 406 (_format, Accept) or 415 (a body). "
                    f"Search: GET or POST [type]/_search; _count defaults to {DEFAULT_COUNT} "
                    f"and is capped at {MAX_COUNT} (0 = the total only); _offset; "
                    "_summary=count; _total; _elements. Unknown parameters get 400 unless "
                    "Prefer: handling=lenient."
                ),
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": (
                        "Every interaction but this CapabilityStatement needs a bearer "
                        "token from the identity provider with SMART v2 scopes (and, for "
                        "people, a role); see /.well-known/smart-configuration."
                    ),
                },
                "resource": resources,
                "interaction": [
                    {
                        "code": "batch",
                        "documentation": "Entries: MedicationRequest only (POST, PUT, "
                        "DELETE, GET); each entry stands alone, urn:uuid references are "
                        "refused.",
                    },
                    {
                        "code": "transaction",
                        "documentation": "Entries: MedicationRequest only (POST with "
                        "ifNoneExist, PUT and DELETE with ifMatch, GET); all or nothing; "
                        "urn:uuid fullUrls of entries may be referenced.",
                    },
                ],
            }
        ],
    }


def _search_params(resource_type: str) -> list[dict[str, str]]:
    return [{"name": name, "type": kind} for name, kind in SEARCH_PARAMS[resource_type].items()]


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    """What this FHIR base supports (FHIR R4 4.0.1)."""
    return fhir_response(capability_statement(base_url(request)))
