"""Completed session records on the service's FHIR base.

``GET /fhir/MedicationAdministration`` and ``GET /fhir/Observation`` search (patient/subject,
date/effective-time, category), reads of every resource type a session produces, and
``GET /sessions/{id}/fhir`` (the whole session as one ``collection`` Bundle).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..usecases import records
from .deps import RuntimeDep
from .errors import fhir_response
from .fhir_search import collection, parse_search, searchset

router = APIRouter(tags=["fhir"])
READABLE = ("MedicationAdministration", "Observation", "Encounter", "AdverseEvent", "Procedure")


async def _search(request: Request, rt: RuntimeDep, resource_type: str) -> Response:
    query = parse_search(resource_type, request)
    return fhir_response(searchset(request, query, await records.search(rt, query)))


@router.get("/fhir/MedicationAdministration")
async def search_administrations(request: Request, rt: RuntimeDep) -> Response:
    """Search MedicationAdministrations by ``patient``/``subject`` and ``effective-time``."""
    return await _search(request, rt, "MedicationAdministration")


@router.get("/fhir/Observation")
async def search_observations(request: Request, rt: RuntimeDep) -> Response:
    """Search vital-sign Observations by ``patient``/``subject``, ``date``, ``category``."""
    return await _search(request, rt, "Observation")


def _add_read_route(resource_type: str) -> None:
    async def read(resource_id: str, rt: RuntimeDep) -> Response:
        resource = await records.read_resource(rt, resource_type, resource_id)
        return fhir_response(resource, 200, {"ETag": 'W/"1"'})

    read.__doc__ = f"Read one {resource_type} of a finished session."
    router.add_api_route(
        f"/fhir/{resource_type}/{{resource_id}}",
        read,
        methods=["GET"],
        name=f"read_{resource_type}",
    )


for _type in READABLE:
    _add_read_route(_type)


@router.get("/sessions/{session_id}/fhir")
async def session_collection(request: Request, session_id: str, rt: RuntimeDep) -> Response:
    """The whole finished session as one FHIR ``collection`` Bundle."""
    return fhir_response(collection(request, await records.session_record(rt, session_id)))
