"""Reading FHIR JSON request bodies and writing FHIR responses for the ``/fhir`` base."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from fhir_mappings.operation_outcome import issue_to_fhir, operation_outcome

from ..domain.errors import Invalid, Issue
from ..read_models import OrderRecord
from .errors import fhir_response

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
    return str(request.base_url).rstrip("/") + "/fhir"


def version_headers(request: Request, row: OrderRecord) -> dict[str, str]:
    return {
        "ETag": f'W/"{row.version_id}"',
        "Last-Modified": http_date(row.last_updated),
        "Location": f"{base_url(request)}/MedicationRequest/{row.id}/_history/{row.version_id}",
    }


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True) if when.tzinfo else format_datetime(when)


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
