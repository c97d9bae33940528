"""Reading FHIR JSON request bodies and writing FHIR responses for the ``/fhir`` base."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from fhir_mappings.operation_outcome import issue_to_fhir, operation_outcome

from ..domain.errors import Invalid, Issue
from ..read_models import OrderRecord
from .errors import ApiError, fhir_response

Json = dict[str, Any]


async def read_resource(request: Request, expected_type: str | None = None) -> Json:
    """Parse the body as a FHIR JSON object; 400 with an OperationOutcome otherwise."""
    raw = await request.body()
    if not raw.strip():
        raise Invalid.because("required", "the request body is empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid.because("structure", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Invalid.because("structure", "the body must be a JSON object (a FHIR resource)")
    check_type(body, expected_type)
    if _MAY_HOLD_CONTROL.search(raw):
        check_characters(body, str(body["resourceType"]))
    return body


# JSON can only carry a control character escaped: \b, \f, or \u00XX ("\\u0000" is a
# backslash and text, which the walk below then finds harmless). Most bodies have none
# of these, so the walk is skipped for them.
_MAY_HOLD_CONTROL = re.compile(rb"\\(?:[bf]|u00[01])")
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def check_characters(node: Any, path: str) -> None:
    """FHIR strings hold no control characters but tab, CR and LF (R4 ``string``: "SHALL
    NOT contain Unicode character points below 32, except for u0009, u000D and u000A");
    PostgreSQL cannot even store U+0000. 400 naming the element that has one."""
    if isinstance(node, str):
        if _FORBIDDEN.search(node):
            raise Invalid.because(
                "invalid", "strings must not contain control characters (e.g. U+0000)", path
            )
    elif isinstance(node, dict):
        for key, value in node.items():
            if _FORBIDDEN.search(key):
                raise Invalid.because("invalid", "a property name holds a control character", path)
            check_characters(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_characters(value, f"{path}[{i}]")


def check_type(body: Json, expected_type: str | None) -> None:
    rtype = body.get("resourceType")
    if not isinstance(rtype, str):
        raise Invalid.because("required", "resourceType is missing", "resourceType")
    if expected_type and rtype != expected_type:
        raise Invalid(f"expected a {expected_type}, got a {rtype}", "resourceType")


def base_url(request: Request) -> str:
    """This FHIR base's URL as the client addressed it (worked out once per request, and
    once per way of addressing it: Starlette builds two URL objects for it)."""
    scope = request.scope
    found = scope.get("infusion.base_url")
    if found is None:
        host = next((value for name, value in scope["headers"] if name == b"host"), None)
        root = scope.get("app_root_path", scope.get("root_path", ""))
        server = scope.get("server")
        key = (scope.get("scheme"), tuple(server) if server else None, root, host)
        found = _BASES.get(key)
        if found is None:
            found = str(request.base_url).rstrip("/") + "/fhir"
            if len(_BASES) >= MAX_BASES:  # the Host header is the client's: keep the latest
                _BASES.clear()
            _BASES[key] = found
        scope["infusion.base_url"] = found
    return str(found)


MAX_BASES = 64
_BASES: dict[tuple[Any, ...], str] = {}


def version_headers(request: Request, row: OrderRecord) -> dict[str, str]:
    """``ETag``, ``Last-Modified`` and the ``Location`` of the version (it can be vread)."""
    return {
        **read_headers(row.version_id, row.last_updated),
        "Location": f"{base_url(request)}/MedicationRequest/{row.id}/_history/{row.version_id}",
    }


def read_headers(version_id: int | str, last_updated: datetime | str | None) -> dict[str, str]:
    """``ETag`` and ``Last-Modified`` of a served version."""
    headers = {"ETag": f'W/"{version_id}"'}
    if isinstance(last_updated, str):
        last_updated = datetime.fromisoformat(last_updated.replace("Z", "+00:00"))
    if last_updated is not None:
        headers["Last-Modified"] = http_date(last_updated)
    return headers


def resource_headers(resource: Json) -> dict[str, str]:
    """Read headers from a served resource's own ``meta``."""
    meta = resource.get("meta") or {}
    return read_headers(meta.get("versionId", "1"), meta.get("lastUpdated"))


def fhir_instant(when: datetime) -> str:
    """A FHIR ``instant`` (a naive time is UTC, as the store keeps it)."""
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def http_date(when: datetime) -> str:
    """An HTTP date (RFC 9110 IMF-fixdate, always GMT; a naive time is UTC, as the store
    keeps it), as ``email.utils.format_datetime(usegmt=True)`` writes it, in a third of the
    time (and whatever the locale: not ``strftime``'s ``%a``/``%b``)."""
    utc = when.astimezone(UTC) if when.tzinfo else when
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (  # noqa: UP031 (twice as fast as an f-string)
        _DAYS[utc.weekday()],
        utc.day,
        _MONTHS[utc.month - 1],
        utc.year,
        utc.hour,
        utc.minute,
        utc.second,
    )


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def prefer_return(request: Request) -> str:
    """The ``return=`` preference: representation (default), minimal, or OperationOutcome."""
    for part in request.headers.get("prefer", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "return" and value in ("minimal", "representation", "OperationOutcome"):
            return value
    return "representation"


def write_response(
    request: Request,
    row: OrderRecord,
    status_code: int,
    message: str,
    issues: list[Issue] | None = None,
) -> Response:
    """A create/update answer shaped by ``Prefer: return=``."""
    headers = version_headers(request, row)
    preference = prefer_return(request)
    if preference == "minimal":
        return Response(status_code=status_code, headers=headers)
    if preference == "OperationOutcome":
        outcome = operation_outcome([Issue("informational", message, severity="information")])
        outcome["issue"] += [issue_to_fhir(i) for i in issues or []]
        return fhir_response(outcome, status_code, headers)
    return fhir_response(row.resource, status_code, headers)


JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
FORMAT_ALIASES = {"json": "application/fhir+json", "xml": "application/fhir+xml"}


async def check_formats(request: Request) -> None:
    """(``async`` only so that FastAPI runs it on the event loop, not in a worker thread.)
    This FHIR base speaks JSON only (R4 http.html#mime-type): a request for another
    format (``_format``, ``Accept``) gets 406; a body in another format 415."""
    wanted = request.query_params.get("_format") if request.scope.get("query_string") else None
    if wanted is not None and FORMAT_ALIASES.get(wanted, wanted).split(";")[0] not in JSON_TYPES:
        raise ApiError.one(406, "not-supported", f"_format {wanted!r}: only JSON", "_format")
    accept = request.headers.get("accept")
    if accept and wanted is None and not _accepts_json(accept):
        raise ApiError.one(406, "not-supported", "only application/fhir+json is served", "Accept")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in ("POST", "PUT") and content_type and content_type not in JSON_TYPES:
        form = "application/x-www-form-urlencoded"
        if not (content_type == form and request.url.path.endswith("/_search")):
            raise ApiError.one(
                415, "not-supported", f"{content_type} bodies are not accepted: send JSON"
            )


def _accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        if "q=0" in params or "q=0.0" in params:
            continue
        if media in (*JSON_TYPES, "*/*", "application/*"):
            return True
    return False
