"""ASGI middleware: access log without PHI, the audit record of every guarded request,
JSON-only request bodies, a request body size limit, and ``HEAD``."""

from __future__ import annotations

import itertools
import logging
import time
import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_mappings.operation_outcome import single_issue

from ..logging import get_logger
from ..metrics import Metrics
from ..runtime import Runtime
from ..usecases.audit import AuditEntry, close_request

log = get_logger("infusion_bridge.access")
_stdlib_log = logging.getLogger("infusion_bridge.access")
_ids = itertools.count()
_ID_PREFIX = uuid.uuid4().hex[:8]


def _request_id() -> str:
    """16 hex digits, unique per process run (a random prefix and a counter): an id to find
    a request's lines by, not a secret."""
    return f"{_ID_PREFIX}{next(_ids) & 0xFFFFFFFF:08x}"


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class AccessLogMiddleware:
    """One log line per request: method, route template, status, duration, request id;
    and the same figures into the request histogram of ``metrics``, when given."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id()
        scope["infusion.request_id"] = request_id
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "<unmatched>")
            elapsed = time.perf_counter() - start
            if _stdlib_log.isEnabledFor(logging.INFO):  # skip building a line nobody keeps
                log.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                    request_id=request_id,
                )
            if self.metrics is not None:
                method = scope["method"] if scope["method"] in _METHODS else "OTHER"
                self.metrics.http_requests.labels(method, route, str(status)).observe(elapsed)


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 before the route reads them all."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        outcome = single_issue("too-costly", f"request body is larger than {self.max_bytes} bytes")
        await _send_outcome(send, 413, outcome)


class AuditMiddleware:
    """Write the audit record of a guarded request that wrote none with its data (reads,
    refusals, failures) before its answer leaves: no access goes unrecorded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def close(status: int) -> None:
            entry = scope.get("infusion.audit")
            runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
            if isinstance(entry, AuditEntry) and runtime is not None:
                await close_request(runtime, entry, status)

        async def audited_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                await close(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not started:
                await close(500)
            raise


JSON_TYPES = (b"application/json", b"application/fhir+json")
FORM = b"application/x-www-form-urlencoded"


class JsonBodyMiddleware:
    """A request body must be JSON (``application/json`` or ``application/fhir+json``):
    anything else gets 415, so that a plain HTML form elsewhere cannot post here. The
    clinician pages (``/ui``) post only their own forms, each with a CSRF token. FHIR's
    ``POST /fhir/[type]/_search`` takes its parameters as a form body (http.html#search):
    a read, and only with a bearer token, which no form elsewhere can send."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH")
            and not scope["path"].startswith("/ui/")
        ):
            headers = dict(scope.get("headers", []))
            has_body = headers.get(b"content-length", b"0") != b"0" or (
                b"transfer-encoding" in headers
            )
            media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            search = media == FORM and _is_fhir_search(scope["path"])
            if has_body and media not in JSON_TYPES and not search:
                await _send_outcome(
                    send,
                    415,
                    single_issue(
                        "not-supported",
                        "request bodies must be application/fhir+json or application/json",
                    ),
                )
                return
        await self.app(scope, receive, send)


def _is_fhir_search(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 4 and parts[1] == "fhir" and parts[3] == "_search"


async def _send_outcome(send: Send, status: int, outcome: dict[str, object]) -> None:
    body = orjson.dumps(outcome)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/fhir+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HeadMiddleware:
    """``HEAD`` is a ``GET`` without the body (RFC 9110 9.3.2): every GET route answers it,
    with the same status and headers (``Content-Length`` included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
