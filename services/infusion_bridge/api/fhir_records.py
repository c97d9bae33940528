"""Completed session records on the service's FHIR base.

``GET /fhir/MedicationAdministration`` and ``GET /fhir/Observation`` search (patient/subject,
date/effective-time, category), reads of every resource type a session produces, and
``GET /sessions/{id}/fhir`` (the whole session as one ``collection`` Bundle).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..access import Access, guard, need
from ..usecases import records
from .deps import RuntimeDep
from .errors import fhir_response
from .fhir_search import collection, parse_search, searchset

router = APIRouter(tags=["fhir"])
READABLE = ("MedicationAdministration", "Observation", "Encounter", "AdverseEvent", "Procedure")
STAFF = ("nurse", "clinician")


def searching(resource_type: str) -> Any:
    return Depends(guard(need(resource_type, "rs", roles=STAFF), interaction="search"))


def reading(resource_type: str) -> Any:
    return Depends(guard(need(resource_type, "r", roles=STAFF), interaction="read"))


async def _search(request: Request, rt: RuntimeDep, resource_type: str, access: Access) -> Response:
    query = parse_search(resource_type, request)
    found = await records.search(rt, query, access.compartment)
    return fhir_response(searchset(request, resource_type, query.offset, query.count, found))


@router.get("/fhir/MedicationAdministration")
async def search_administrations(
    request: Request,
    rt: RuntimeDep,
    access: Annotated[Access, searching("MedicationAdministration")],
) -> Response:
    """Search MedicationAdministrations by ``patient``/``subject`` and ``effective-time``."""
    return await _search(request, rt, "MedicationAdministration", access)


@router.get("/fhir/Observation")
async def search_observations(
    request: Request, rt: RuntimeDep, access: Annotated[Access, searching("Observation")]
) -> Response:
    """Search vital-sign Observations by ``patient``/``subject``, ``date``, ``category``."""
    return await _search(request, rt, "Observation", access)


def _add_read_route(resource_type: str) -> None:
    # the dependency as a default: an annotation could not see ``resource_type`` (a closure)
    async def read(
        resource_id: str, rt: RuntimeDep, access: Access = reading(resource_type)
    ) -> Response:
        found = await records.read_resource(rt, resource_type, resource_id, access.compartment)
        return fhir_response(found, 200, {"ETag": 'W/"1"'})

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
async def session_collection(
    request: Request, session_id: str, rt: RuntimeDep, access: Annotated[Access, reading("Session")]
) -> Response:
    """The whole finished session as one FHIR ``collection`` Bundle."""
    resources = await records.session_record(rt, session_id, access.compartment)
    return fhir_response(collection(request, resources))
