"""``GET /fhir/metadata``: the CapabilityStatement of the service's own FHIR base."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import __version__
from .errors import fhir_response
from .fhir_io import base_url
from .fhir_records import READABLE
from .fhir_search import SEARCH_PARAMS

router = APIRouter(prefix="/fhir", tags=["fhir"])

_PARAM_TYPES = {
    "patient": "reference",
    "subject": "reference",
    "date": "date",
    "effective-time": "date",
    "category": "token",
}


def capability_statement(base: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {
            "type": "MedicationRequest",
            "interaction": [{"code": c} for c in ("read", "create", "update", "delete")],
            "versioning": "versioned-update",
            "conditionalCreate": True,
            "updateCreate": True,
        }
    ]
    for rtype in READABLE:
        entry: dict[str, Any] = {"type": rtype, "interaction": [{"code": "read"}]}
        if rtype in SEARCH_PARAMS:
            entry["interaction"].append({"code": "search-type"})
            entry["searchParam"] = [
                {"name": name, "type": _PARAM_TYPES[name]} for name in SEARCH_PARAMS[rtype]
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "kind": "instance",
        "software": {"name": "Infusion Bridge", "version": __version__},
        "implementation": {"description": "Infusion Bridge FHIR base", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    """What this FHIR base supports (FHIR R4 4.0.1)."""
    return fhir_response(capability_statement(base_url(request)))
