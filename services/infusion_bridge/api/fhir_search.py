"""FHIR search on the service's base: parse the query string, render the searchset Bundle.

Unknown search parameters are refused with 400, never ignored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from ..domain.errors import Invalid
from ..read_models import SearchPage
from ..usecases.records import ResourceSearch
from .fhir_io import base_url

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
        raise Invalid(f"{name}: {raw!r} is not a FHIR date or dateTime", name) from exc
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return [(prefix, instant)]


def parse_search(resource_type: str, request: Request) -> ResourceSearch:
    allowed = SEARCH_PARAMS[resource_type]
    criteria: dict[str, Any] = {}
    dates: list[tuple[str, datetime]] = []
    for name, raw in request.query_params.multi_items():
        if name in CONTROL_PARAMS:
            continue
        target = allowed.get(name)
        if target is None:
            raise Invalid.because(
                "not-supported",
                f"unknown search parameter {name!r} for {resource_type}; supported: "
                + ", ".join(sorted([*allowed, "_count", "_offset"])),
                name,
            )
        if target == "patient":
            criteria["patient"] = raw
        elif target == "category":
            criteria["category"] = raw.split("|")[-1]
        else:
            dates += parse_date_param(name, raw)
    return ResourceSearch(
        resource_type,
        dates=tuple(dates),
        count=int_param(request, "_count", 50, 1, 200),
        offset=int_param(request, "_offset", 0, 0, 1_000_000),
        **criteria,
    )


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"{name} must be a whole number {low}..{high}", name)
    return int(raw)


def searchset(
    request: Request, resource_type: str, offset: int, count: int, page: SearchPage
) -> Json:
    """The ``searchset`` Bundle with ``self``, ``next`` and ``previous`` links."""
    base = base_url(request)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "_offset"]
    links = [{"relation": "self", "url": str(request.url)}]
    if offset + count < page.total:
        nxt = urlencode([*params, ("_offset", str(offset + count))])
        links.append({"relation": "next", "url": f"{base}/{resource_type}?{nxt}"})
    if offset > 0:
        prev = urlencode([*params, ("_offset", str(max(0, offset - count)))])
        links.append({"relation": "previous", "url": f"{base}/{resource_type}?{prev}"})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page.resources
        ],
    }


def collection(request: Request, resources: list[Json]) -> Json:
    """A ``collection`` Bundle of resources served on this base."""
    base = base_url(request)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }
