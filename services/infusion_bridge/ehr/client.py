"""An async FHIR R4 client for the EHR, over one pooled ``httpx.AsyncClient``.

Bodies go in and come out as plain JSON dicts: turning them into typed resources is
the job of ``fhir_mappings``. Every failure is raised as an ``EhrError`` subclass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson

from .errors import (
    EhrClientError,
    EhrError,
    EhrInvalidResponse,
    EhrResponseError,
    EhrServerError,
    EhrUnavailable,
)

FHIR_JSON = "application/fhir+json"
Json = dict[str, Any]


class EhrResponse:
    """A successful FHIR answer: status, headers, and the parsed body (if any)."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status_code: int, headers: httpx.Headers, body: Json | None) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body

    @property
    def etag(self) -> str | None:
        etag: str | None = self.headers.get("etag")
        return etag

    @property
    def location(self) -> str | None:
        loc: str | None = self.headers.get("content-location") or self.headers.get("location")
        return loc


class EhrClient:
    """FHIR REST operations against one base URL (``.../fhir``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        max_connections: int = 20,
        bearer_token: str | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``auth`` (e.g. ``BackendServicesAuth``) authorizes every request; it is closed with
        the client when it has an ``aclose``."""
        self.base_url = base_url.rstrip("/") + "/"
        self.auth = auth
        headers = {"Accept": FHIR_JSON, "User-Agent": "infusion-bridge"}
        if bearer_token:
            headers["Authorization"] = f"Bearer {bearer_token}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            auth=auth,
        )

    async def __aenter__(self) -> EhrClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        close = getattr(self.auth, "aclose", None)
        if close is not None:
            await close()

    # -- FHIR interactions -------------------------------------------------------------

    async def metadata(self) -> Json:
        return await self._json("GET", "metadata")

    async def read(self, resource_type: str, resource_id: str) -> Json:
        return await self._json("GET", f"{resource_type}/{resource_id}")

    async def search(self, resource_type: str, params: Mapping[str, str] | None = None) -> Json:
        return await self._json("GET", resource_type, params=params)

    async def get_url(self, url: str) -> Json:
        """Follow an absolute or relative link the server gave us (e.g. a ``next`` page)."""
        return await self._json("GET", urljoin(self.base_url, url))

    async def search_pages(
        self, resource_type: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[Json]:
        """Yield each searchset page, following ``next`` links until there are none."""
        page = await self.search(resource_type, params)
        while True:
            yield page
            nxt = next_link(page)
            if nxt is None:
                return
            page = await self.get_url(nxt)

    async def create(self, resource: Json, *, if_none_exist: str | None = None) -> EhrResponse:
        """POST a resource; with ``if_none_exist`` this is a conditional create."""
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else None
        return await self.request("POST", resource["resourceType"], body=resource, headers=headers)

    async def update(self, resource: Json, *, if_match: str | None = None) -> EhrResponse:
        headers = {"If-Match": if_match} if if_match else None
        path = f"{resource['resourceType']}/{resource['id']}"
        return await self.request("PUT", path, body=resource, headers=headers)

    async def delete(self, resource_type: str, resource_id: str) -> EhrResponse:
        return await self.request("DELETE", f"{resource_type}/{resource_id}")

    async def transaction(self, bundle: Json) -> Json:
        """POST a batch or transaction Bundle to the base; returns the response Bundle."""
        response = await self.request("POST", "", body=bundle)
        return _require_body(response)

    async def operation(self, path: str, body: Json) -> Json:
        """POST to an operation such as ``Observation/$validate``."""
        return _require_body(await self.request("POST", path, body=body))

    # -- plumbing ----------------------------------------------------------------------

    async def _json(
        self, method: str, url: str, *, params: Mapping[str, str] | None = None
    ) -> Json:
        return _require_body(await self.request(method, url, params=params))

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: Json | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> EhrResponse:
        send_headers = dict(headers or {})
        content = None
        if body is not None:
            content = orjson.dumps(body)
            send_headers["Content-Type"] = FHIR_JSON
        try:
            response = await self._http.request(
                method, url, content=content, params=params, headers=send_headers
            )
        except httpx.TimeoutException as exc:
            raise EhrUnavailable(f"EHR timed out on {method} {_path(url)}") from exc
        except httpx.TransportError as exc:
            raise EhrUnavailable(
                f"EHR unreachable on {method} {_path(url)}: {type(exc).__name__}"
            ) from exc
        return _interpret(method, url, response)


def next_link(bundle: Json) -> str | None:
    """The ``next`` link of a searchset Bundle, or None on the last page."""
    for link in bundle.get("link") or []:
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _interpret(method: str, url: str, response: httpx.Response) -> EhrResponse:
    status = response.status_code
    body = _parse_body(response)
    if status < 400:
        if response.content and body is None:
            raise EhrInvalidResponse(
                f"EHR answered {method} {_path(url)} with {status} but the body is not FHIR JSON",
                status_code=status,
            )
        return EhrResponse(status, response.headers, body)
    outcome = body if body and body.get("resourceType") == "OperationOutcome" else None
    cls: type[EhrResponseError] = EhrClientError if status < 500 else EhrServerError
    error = cls(
        f"EHR answered {method} {_path(url)} with {status}",
        status_code=status,
        outcome=outcome,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )
    text = error.diagnostics
    if text:
        error.args = (f"{error.args[0]}: {text}",)
    raise error


def _parse_body(response: httpx.Response) -> Json | None:
    if not response.content:
        return None
    try:
        parsed = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _require_body(response: EhrResponse) -> Json:
    if response.body is None:
        raise EhrInvalidResponse("EHR sent an empty body", status_code=response.status_code)
    return response.body


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _path(url: str) -> str:
    """The path without a query string: queries may carry patient identifiers."""
    return url.split("?", 1)[0] or "/"


__all__ = ["EhrClient", "EhrError", "EhrResponse", "next_link", "parse_retry_after"]
