"""Completed session records on the service's FHIR base.

``GET /fhir/MedicationAdministration`` and ``GET /fhir/Observation`` search (patient/subject,
date/effective-time, category), reads of every resource type a session produces, and
``GET /sessions/{id}/fhir`` (the whole session as one Bundle). Unknown search parameters
are refused with 400, never ignored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..domain.errors import NotFound
from ..domain.orders import patient_reference
from ..store.db import session_scope
from ..store.fhir_resources import get_resource, search_resources, session_resources
from ..store.sessions import get_session_row
from .errors import ApiError, fhir_response
from .fhir_io import base_url
from .state import app_state

router = APIRouter(tags=["fhir"])
Json = dict[str, Any]

SEARCH_PARAMS: dict[str, dict[str, str]] = {
    # resource type -> {search parameter: what it filters}
    "MedicationAdministration": {
        "patient": "patient",
        "subject": "patient",
        "effective-time": "date",
    },
    "Observation": {
        "patient": "patient",
        "subject": "patient",
        "date": "date",
        "category": "category",
    },
}
CONTROL_PARAMS = {"_count", "_offset", "_format"}
READABLE = ("MedicationAdministration", "Observation", "Encounter", "AdverseEvent", "Procedure")
PREFIXES = ("eq", "gt", "ge", "lt", "le")


def parse_date_param(name: str, raw: str) -> list[tuple[str, datetime]]:
    """A FHIR date search value -> bounds; a bare date covers that whole (UTC) day."""
    prefix = raw[:2] if raw[:2] in PREFIXES else "eq"
    value = raw[2:] if raw[:2] in PREFIXES else raw
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
            return {
                "eq": [("ge", start), ("lt", end)],
                "gt": [("ge", end)],
                "ge": [("ge", start)],
                "lt": [("lt", start)],
                "le": [("lt", end)],
            }[prefix]
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise ApiError.one(
            400, "invalid", f"{name}: {raw!r} is not a FHIR date or dateTime", name
        ) from exc
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return [(prefix, instant)]


def _criteria(resource_type: str, request: Request) -> dict[str, Any]:
    allowed = SEARCH_PARAMS[resource_type]
    criteria: dict[str, Any] = {"after": []}
    for name, raw in request.query_params.multi_items():
        if name in CONTROL_PARAMS:
            continue
        target = allowed.get(name)
        if target is None:
            raise ApiError.one(
                400,
                "not-supported",
                f"unknown search parameter {name!r} for {resource_type}; supported: "
                + ", ".join(sorted([*allowed, "_count", "_offset"])),
                name,
            )
        if target == "patient":
            criteria["patient"] = patient_reference(raw)
        elif target == "category":
            criteria["category"] = raw.split("|")[-1]
        else:
            criteria["after"] += parse_date_param(name, raw)
    return criteria


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError.one(400, "invalid", f"{name} must be a whole number {low}..{high}", name)
    return int(raw)


async def _search(request: Request, resource_type: str) -> Response:
    criteria = _criteria(resource_type, request)
    count = _int_param(request, "_count", 50, 1, 200)
    offset = _int_param(request, "_offset", 0, 0, 1_000_000)
    engine = app_state(request).engine

    def load() -> tuple[int, list[Json]]:
        with session_scope(engine) as session:
            total, rows = search_resources(
                session, resource_type, offset=offset, limit=count, **criteria
            )
            return total, [r.resource_json for r in rows]

    total, resources = await run_in_threadpool(load)
    base = base_url(request)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "_offset"]
    links = [{"relation": "self", "url": str(request.url)}]
    if offset + count < total:
        nxt = urlencode([*params, ("_offset", str(offset + count))])
        links.append({"relation": "next", "url": f"{base}/{resource_type}?{nxt}"})
    if offset > 0:
        prev = urlencode([*params, ("_offset", str(max(0, offset - count)))])
        links.append({"relation": "previous", "url": f"{base}/{resource_type}?{prev}"})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
    return fhir_response(bundle)


@router.get("/fhir/MedicationAdministration")
async def search_administrations(request: Request) -> Response:
    """Search MedicationAdministrations by ``patient``/``subject`` and ``effective-time``."""
    return await _search(request, "MedicationAdministration")


@router.get("/fhir/Observation")
async def search_observations(request: Request) -> Response:
    """Search vital-sign Observations by ``patient``/``subject``, ``date``, ``category``."""
    return await _search(request, "Observation")


async def _read(request: Request, resource_type: str, resource_id: str) -> Response:
    engine = app_state(request).engine

    def load() -> Json | None:
        with session_scope(engine) as session:
            row = get_resource(session, resource_type, resource_id)
            return row.resource_json if row else None

    resource = await run_in_threadpool(load)
    if resource is None:
        raise ApiError.one(404, "not-found", f"{resource_type}/{resource_id} is not known")
    return fhir_response(resource, 200, {"ETag": 'W/"1"'})


def _add_read_route(resource_type: str) -> None:
    async def read(request: Request, resource_id: str) -> Response:
        return await _read(request, resource_type, resource_id)

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
async def session_bundle(request: Request, session_id: str) -> Response:
    """The whole finished session as one FHIR ``collection`` Bundle."""
    engine = app_state(request).engine

    def load() -> list[Json]:
        with session_scope(engine) as session:
            if get_session_row(session, session_id) is None:
                raise NotFound(f"session {session_id} does not exist", "session_id")
            return [r.resource_json for r in session_resources(session, session_id)]

    resources = await run_in_threadpool(load)
    if not resources:
        raise ApiError.one(
            404, "not-found", f"session {session_id} is not finished: it has no FHIR record yet"
        )
    base = base_url(request)
    return fhir_response(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r}
                for r in resources
            ],
        }
    )
