"""Completed session records on the service's FHIR base.

``GET /fhir/MedicationAdministration`` and ``GET /fhir/Observation`` search (patient/subject,
date/effective-time, category; also ``POST .../_search``), reads and vreads of every
resource type a session produces (each has one version, ``1``), and
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
from .fhir_io import check_formats, resource_headers
from .fhir_search import collection, read_search, resource_search, searchset

router = APIRouter(tags=["fhir"], dependencies=[Depends(check_formats)])
READABLE = ("MedicationAdministration", "Observation", "Encounter", "AdverseEvent", "Procedure")
STAFF = ("nurse", "clinician")


def searching(resource_type: str) -> Any:
    return Depends(guard(need(resource_type, "rs", roles=STAFF), interaction="search"))


def reading(resource_type: str, interaction: str = "read") -> Any:
    return Depends(guard(need(resource_type, "r", roles=STAFF), interaction=interaction))


async def _search(request: Request, rt: RuntimeDep, resource_type: str, access: Access) -> Response:
    search = await read_search(request, resource_type)
    page = await records.search(rt, resource_search(request, search), access.compartment)
    return fhir_response(searchset(request, search, page.total, page.resources))


@router.get("/fhir/MedicationAdministration")
@router.post("/fhir/MedicationAdministration/_search")
async def search_administrations(
    request: Request,
    rt: RuntimeDep,
    access: Annotated[Access, searching("MedicationAdministration")],
) -> Response:
    """Search MedicationAdministrations by ``patient``/``subject`` and ``effective-time``."""
    return await _search(request, rt, "MedicationAdministration", access)


@router.get("/fhir/Observation")
@router.post("/fhir/Observation/_search")
async def search_observations(
    request: Request, rt: RuntimeDep, access: Annotated[Access, searching("Observation")]
) -> Response:
    """Search vital-sign Observations by ``patient``/``subject``, ``date``, ``category``."""
    return await _search(request, rt, "Observation", access)


def _add_read_routes(resource_type: str) -> None:
    # the dependency as a default: an annotation could not see ``resource_type`` (a closure)
    async def read(
        resource_id: str, rt: RuntimeDep, access: Access = reading(resource_type)
    ) -> Response:
        found = await records.read_resource(rt, resource_type, resource_id, access.compartment)
        return fhir_response(found, 200, resource_headers(found))

    async def vread(
        resource_id: str,
        version_id: str,
        rt: RuntimeDep,
        access: Access = reading(resource_type, "vread"),
    ) -> Response:
        found = await records.read_resource(
            rt, resource_type, resource_id, access.compartment, version_id
        )
        return fhir_response(found, 200, resource_headers(found))

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
async def session_collection(
    request: Request, session_id: str, rt: RuntimeDep, access: Annotated[Access, reading("Session")]
) -> Response:
    """The whole finished session as one FHIR ``collection`` Bundle."""
    resources = await records.session_record(rt, session_id, access.compartment)
    return fhir_response(collection(request, resources))
