"""FHIR search on the service's base: read the parameters (query string, or the form body
of ``POST [type]/_search``), render the searchset Bundle.

Result parameters (search.html#return): ``_count`` (larger values are capped at
:data:`MAX_COUNT`, ``0`` asks for the total only), ``_offset``, ``_summary=count|false``,
``_total``, ``_elements``. Unknown or unsupported parameters are refused with 400 naming
them, unless the client sends ``Prefer: handling=lenient``: then they are ignored and left
out of the ``self`` link, which shows the search as it was run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request

from fhir_mappings import search_values

from ..domain.errors import Invalid
from ..runtime import get_runtime
from ..usecases.order_search import ORDER_SEARCH_PARAMS, OrderCriteria, read_order_criteria
from ..usecases.records import ResourceSearch
from .fhir_io import base_url

Json = dict[str, Any]
Pairs = list[tuple[str, str]]

SEARCH_PARAMS: dict[str, dict[str, str]] = {
    # resource type -> {search parameter: its FHIR type}
    "MedicationRequest": ORDER_SEARCH_PARAMS,
    "MedicationAdministration": {
        "patient": "reference",
        "subject": "reference",
        "effective-time": "date",
    },
    "Observation": {
        "patient": "reference",
        "subject": "reference",
        "date": "date",
        "category": "token",
    },
}
RESULT_PARAMS = ("_count", "_offset", "_summary", "_total", "_elements", "_format")
DEFAULT_COUNT = 50
MAX_COUNT = 200
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


@dataclass(frozen=True)
class Paging:
    """What a search returns: which page, the total only, which elements."""

    count: int = DEFAULT_COUNT
    offset: int = 0
    summary_count: bool = False
    elements: tuple[str, ...] = ()


@dataclass(frozen=True)
class Search:
    """A search as it will run: its resource type, the parameters used (for the links),
    the criteria and the paging."""

    resource_type: str
    used: Pairs
    criteria: Pairs
    paging: Paging


async def read_search(request: Request, resource_type: str) -> Search:
    """The parameters of a GET (query) or ``POST _search`` (form body and query)."""
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":  # application/x-www-form-urlencoded (http.html#search)
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs += parse_qsl(body, keep_blank_values=True)
    lenient = "handling=lenient" in request.headers.get("prefer", "").replace(" ", "")
    supported = SEARCH_PARAMS[resource_type]
    used: Pairs = []
    criteria: Pairs = []
    for name, value in pairs:
        if name in RESULT_PARAMS:
            used.append((name, value))
        elif name.partition(":")[0] in supported:
            criteria.append((name, value))
        elif not lenient:
            raise Invalid.because(
                "not-supported",
                f"unknown search parameter {name!r} for {resource_type}; supported: "
                + ", ".join([*supported, *RESULT_PARAMS]),
                name,
            )
    paging, used = _paging(used, lenient)
    return Search(resource_type, criteria + used, criteria, paging)


def _paging(pairs: Pairs, lenient: bool) -> tuple[Paging, Pairs]:
    values = dict(pairs)
    kept = [(k, v) for k, v in pairs if k not in ("_count", "_offset", "_summary")]
    summary = values.get("_summary", "false")
    if summary not in ("count", "false"):
        if not lenient:
            raise Invalid.because(
                "not-supported", "_summary supports only count and false", "_summary"
            )
        summary = "false"
    total = values.get("_total", "accurate")
    if total not in ("none", "estimate", "accurate"):
        raise Invalid("_total must be none, estimate or accurate", "_total")
    count = min(_whole(values, "_count", DEFAULT_COUNT), MAX_COUNT)
    offset = _whole(values, "_offset", 0)
    elements = tuple(e.strip() for e in values.get("_elements", "").split(",") if e.strip())
    paging = Paging(count, offset, summary == "count" or count == 0, elements)
    if summary == "count":
        kept.append(("_summary", "count"))
    return paging, [*kept, ("_count", str(count))]


def _whole(values: dict[str, str], name: str, default: int) -> int:
    raw = values.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > 1_000_000:
        raise Invalid(f"{name} must be a whole number 0..1000000", name)
    return int(raw)


def order_criteria(request: Request, search: Search) -> OrderCriteria:
    return read_order_criteria(search.criteria, local_bases=_bases(request))


def resource_search(request: Request, search: Search) -> ResourceSearch:
    """The criteria of a MedicationAdministration or Observation search."""
    criteria: dict[str, Any] = {}
    dates: list[tuple[str, datetime]] = []
    for raw_name, raw in search.criteria:
        name, _, modifier = raw_name.partition(":")
        kind = SEARCH_PARAMS[search.resource_type][name]
        try:
            if modifier and not (kind == "reference" and modifier == "Patient"):
                raise ValueError(f"the modifier :{modifier} is not supported")
            if kind == "reference":
                criteria["patient"] = search_values.reference(raw, "Patient", _bases(request))
            elif kind == "token":
                criteria["category"] = raw.split("|")[-1]
            else:
                dates += search_values.date_bounds(raw)
        except ValueError as exc:
            raise Invalid(f"{raw_name}: {exc}", raw_name) from exc
    paging = search.paging
    return ResourceSearch(
        search.resource_type,
        dates=tuple(dates),
        count=paging.count,
        offset=paging.offset,
        **criteria,
    )


def _bases(request: Request) -> tuple[str, ...]:
    return (base_url(request), get_runtime(request).settings.ehr_base_url)


def searchset(request: Request, search: Search, total: int, resources: list[Json]) -> Json:
    """The ``searchset`` Bundle with ``self``, ``first``, ``next`` and ``previous`` links."""
    base = base_url(request)
    paging = search.paging
    url = f"{base}/{search.resource_type}?"

    def link(relation: str, offset: int) -> Json:
        return {"relation": relation, "url": url + urlencode([*search.used, ("_offset", offset)])}

    links = [link("self", paging.offset)]
    if not paging.summary_count:
        links.append(link("first", 0))
        if paging.offset + paging.count < total:
            links.append(link("next", paging.offset + paging.count))
        if paging.offset > 0:
            links.append(link("previous", max(0, paging.offset - paging.count)))
    bundle: Json = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    if not paging.summary_count:
        bundle["entry"] = [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": subsetted(r, paging.elements),
                "search": {"mode": "match"},
            }
            for r in resources
        ]
    return bundle


MANDATORY = {
    # the top-level elements R4 requires (min 1) of each type searched here
    "MedicationRequest": ("status", "intent", "medication", "subject"),
    "MedicationAdministration": ("status", "medication", "subject", "effective"),
    "Observation": ("status", "code"),
}


def subsetted(resource: Json, elements: tuple[str, ...]) -> Json:
    """``_elements``: these top-level elements plus the mandatory ones (search.html#elements:
    servers SHOULD return those), tagged ``SUBSETTED``; a subset no longer claims its
    profiles (``meta.profile`` goes)."""
    if not elements:
        return resource
    required = MANDATORY.get(str(resource.get("resourceType")), ())
    out = {
        k: v
        for k, v in resource.items()
        if k in ("resourceType", "id", "meta", *elements)
        or any(_is_element(k, name) for name in required)
    }
    meta = {k: v for k, v in (out.get("meta") or {}).items() if k != "profile"}
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out


def _is_element(key: str, name: str) -> bool:
    """``key`` is element ``name``, or one of its choice types (``medication`` ->
    ``medicationCodeableConcept``)."""
    return key == name or (key.startswith(name) and key[len(name) :][:1].isupper())


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
