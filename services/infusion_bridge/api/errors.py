"""Turn every error a client can cause into a 4xx with a FHIR OperationOutcome body.

This is the one place where domain errors become HTTP statuses (:data:`DOMAIN_STATUS`).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from fhir_mappings.operation_outcome import Issue, operation_outcome

from ..domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    PreconditionFailed,
    TransactionRefused,
    Unauthenticated,
    Unavailable,
)
from ..logging import get_logger

log = get_logger(__name__)
FHIR_JSON = "application/fhir+json"


DOMAIN_STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    NotFound: 404,
    Gone: 410,
    Conflict: 409,
    PreconditionFailed: 412,
    Unavailable: 503,
    Unauthenticated: 401,
    Forbidden: 403,
    DomainError: 422,
}


def status_for(exc: DomainError) -> int:
    """The HTTP status of a domain error (a refused transaction: its worst entry's)."""
    if isinstance(exc, TransactionRefused):
        return max(status_for(e) for e in exc.errors)
    for kind in type(exc).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]
    return 422


class ApiError(Exception):
    """An error only HTTP has (a missing credential, an unsupported media type)."""

    def __init__(
        self, status_code: int, issues: list[Issue], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__("; ".join(i.diagnostics for i in issues))
        self.status_code = status_code
        self.issues = issues
        self.headers = headers

    @classmethod
    def one(cls, status_code: int, code: str, diagnostics: str, *expression: str) -> ApiError:
        return cls(status_code, [Issue(code, diagnostics, tuple(expression))])


def outcome_response(
    status_code: int, issues: list[Issue], headers: dict[str, str] | None = None
) -> Response:
    return fhir_response(operation_outcome(issues), status_code, headers)


def fhir_response(
    body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, media_type=FHIR_JSON, headers=headers
    )


_STATUS_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
}


ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette names only the first route's):
    each method is tried against the routes; ``HEAD`` goes wherever ``GET`` does."""
    allowed = [
        method
        for method in ALL_METHODS
        if any(
            route.matches({**request.scope, "method": "GET" if method == "HEAD" else method})[0]
            is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return allowed


def challenge(exc: DomainError) -> dict[str, str] | None:
    """``WWW-Authenticate`` for a 401 (RFC 6750)."""
    if not isinstance(exc, Unauthenticated):
        return None
    value = 'Bearer realm="infusion-bridge"'
    if exc.bearer_error:
        value += f', error="{exc.bearer_error}", error_description="{exc}"'
    return {"WWW-Authenticate": value}


def _validation_issues(exc: RequestValidationError) -> list[Issue]:
    issues = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            # a discriminated union (session events): the discriminator itself is at fault
            loc.append(str((err.get("ctx") or {}).get("discriminator", "type")).strip("'"))
        expression = (".".join(loc),) if loc else ()
        issues.append(Issue("invalid", str(err.get("msg", "invalid")), expression))
    return issues or [Issue("invalid", "invalid request")]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return outcome_response(exc.status_code, exc.issues, exc.headers)

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> Response:
        return outcome_response(status_for(exc), exc.issues, challenge(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        return outcome_response(400, _validation_issues(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "exception")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return outcome_response(exc.status_code, [Issue(code, str(exc.detail))], headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        route = request.scope.get("route")
        log.error(
            "unhandled_error",
            route=getattr(route, "path", None),
            method=request.method,
            error=type(exc).__name__,
        )
        return outcome_response(500, [Issue("exception", "internal error; see the service log")])
