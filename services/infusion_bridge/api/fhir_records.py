"""Completed session records on the service's FHIR base.

``GET /fhir/MedicationAdministration`` and ``GET /fhir/Observation`` search (patient/subject,
date/effective-time, category; also ``POST .../_search``), reads and vreads of every
resource type a session produces (each has one version, ``1``), and
``GET /sessions/{id}/fhir`` (the whole session as one ``collection`` Bundle).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..usecases import records
from .deps import RuntimeDep
from .errors import fhir_response
from .fhir_io import check_formats, resource_headers
from .fhir_search import collection, read_search, resource_search, searchset

router = APIRouter(tags=["fhir"], dependencies=[Depends(check_formats)])
READABLE = ("MedicationAdministration", "Observation", "Encounter", "AdverseEvent", "Procedure")


async def _search(request: Request, rt: RuntimeDep, resource_type: str) -> Response:
    search = await read_search(request, resource_type)
    page = await records.search(rt, resource_search(request, search))
    return fhir_response(searchset(request, search, page.total, page.resources))


@router.get("/fhir/MedicationAdministration")
@router.post("/fhir/MedicationAdministration/_search")
async def search_administrations(request: Request, rt: RuntimeDep) -> Response:
    """Search MedicationAdministrations by ``patient``/``subject`` and ``effective-time``."""
    return await _search(request, rt, "MedicationAdministration")


@router.get("/fhir/Observation")
@router.post("/fhir/Observation/_search")
async def search_observations(request: Request, rt: RuntimeDep) -> Response:
    """Search vital-sign Observations by ``patient``/``subject``, ``date``, ``category``."""
    return await _search(request, rt, "Observation")


def _add_read_routes(resource_type: str) -> None:
    async def read(resource_id: str, rt: RuntimeDep) -> Response:
        resource = await records.read_resource(rt, resource_type, resource_id)
        return fhir_response(resource, 200, resource_headers(resource))

    async def vread(resource_id: str, version_id: str, rt: RuntimeDep) -> Response:
        resource = await records.read_resource(rt, resource_type, resource_id, version_id)
        return fhir_response(resource, 200, resource_headers(resource))

    read.__doc__ = f"Read one {resource_type} of a finished session."
    vread.__doc__ = f"Read a version of one {resource_type} (each has one: 1)."
    path = f"/fhir/{resource_type}/{{resource_id}}"
    router.add_api_route(path, read, methods=["GET"], name=f"read_{resource_type}")
    router.add_api_route(
        path + "/_history/{version_id}", vread, methods=["GET"], name=f"vread_{resource_type}"
    )


for _type in READABLE:
    _add_read_routes(_type)


@router.get("/sessions/{session_id}/fhir")
async def session_collection(request: Request, session_id: str, rt: RuntimeDep) -> Response:
    """The whole finished session as one FHIR ``collection`` Bundle."""
    return fhir_response(collection(request, await records.session_record(rt, session_id)))
