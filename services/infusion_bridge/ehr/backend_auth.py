"""SMART Backend Services towards the EHR: OAuth 2.0 client credentials with
``private_key_jwt`` (RFC 7523), as an ``httpx.Auth`` on the one ``EhrClient``.

Each token request carries a fresh client assertion signed with the service's key
(``iss`` = ``sub`` = client id, ``aud`` = token endpoint, ``exp`` ≤ 5 min, unique ``jti``,
``kid`` header). The access token is cached until shortly before it expires, renewed once
when the EHR answers 401, and never logged. The token endpoint comes from the EHR's
``/.well-known/smart-configuration`` unless it is configured.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx
import jwt

from ..logging import get_logger
from .errors import EhrAuthenticationFailed, EhrUnavailable
from .keys import SigningKey

log = get_logger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 300
RENEW_BEFORE_SECONDS = 30.0
"""Renew this long before the token expires (at most a tenth of its lifetime)."""
FAILURE_HOLD_SECONDS = 5.0
"""After a refused token request, callers get the same error for this long instead of each
asking the authorization server again."""


class BackendServicesAuth(httpx.Auth):
    """Bearer tokens from the EHR's authorization server, for every EHR request."""

    def __init__(
        self,
        *,
        client_id: str,
        key: SigningKey,
        scopes: str,
        ehr_base_url: str,
        http: httpx.AsyncClient,
        token_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.key = key
        self.scopes = scopes
        self.ehr_base_url = ehr_base_url.rstrip("/")
        self.http = http
        self.token_url = token_url
        self.clock = clock
        self.tokens_issued = 0
        """How many access tokens this process obtained (renewals included)."""
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self._failure: EhrAuthenticationFailed | None = None
        self._failure_until = 0.0

    async def aclose(self) -> None:
        await self.http.aclose()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("BackendServicesAuth works only with httpx.AsyncClient")
        yield request  # pragma: no cover

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            await response.aread()
            request.headers["Authorization"] = f"Bearer {await self.access_token(stale=token)}"
            yield request

    async def access_token(self, *, stale: str | None = None) -> str:
        """The cached token, or a new one when it is due for renewal or is ``stale`` (the one
        the EHR just refused). Concurrent callers share one token request."""
        async with self._lock:
            if self._token is not None and self._token != stale and self.clock() < self._renew_at:
                return self._token
            self._token = None
            if self._failure is not None and self.clock() < self._failure_until:
                raise self._failure
            try:
                token, lifetime = await self._request_token()
            except EhrAuthenticationFailed as exc:
                self._failure, self._failure_until = exc, self.clock() + FAILURE_HOLD_SECONDS
                raise
            self._failure = None
            self._token = token
            self._renew_at = self.clock() + lifetime - min(RENEW_BEFORE_SECONDS, lifetime / 10)
            self.tokens_issued += 1
            log.info("ehr_token_issued", expires_in=lifetime, renewals=self.tokens_issued - 1)
            return token

    def client_assertion(self, audience: str) -> str:
        """A signed JWT proving this client's identity to ``audience`` (the token endpoint)."""
        now = int(self.clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(
            claims,
            self.key.private_key,
            algorithm=self.key.algorithm,
            headers={"kid": self.key.kid, "typ": "JWT"},
        )

    async def token_endpoint(self) -> str:
        if self.token_url is None:
            url = f"{self.ehr_base_url}/.well-known/smart-configuration"
            try:
                r = await self.http.get(url, headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise EhrUnavailable(
                    f"EHR smart-configuration unreachable: {type(exc).__name__}"
                ) from exc
            endpoint = _json(r).get("token_endpoint") if r.status_code == 200 else None
            if not isinstance(endpoint, str) or not endpoint:
                raise EhrAuthenticationFailed(
                    f"EHR authentication failed: {url} answered {r.status_code} without a "
                    "token_endpoint (set INFUSION_EHR_TOKEN_URL)",
                    retryable=r.status_code >= 500,
                )
            self.token_url = endpoint
        return self.token_url

    async def _request_token(self) -> tuple[str, float]:
        endpoint = await self.token_endpoint()
        form = {
            "grant_type": "client_credentials",
            "scope": self.scopes,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(endpoint),
        }
        try:
            r = await self.http.post(endpoint, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise EhrUnavailable(f"EHR token endpoint unreachable: {type(exc).__name__}") from exc
        body = _json(r)
        token = body.get("access_token")
        if r.status_code != 200 or not isinstance(token, str):
            error = str(body.get("error") or f"HTTP {r.status_code}")
            description = str(body.get("error_description") or "")
            log.warning(
                "ehr_authentication_failed",
                client_id=self.client_id,
                status=r.status_code,
                error=error,
                error_description=description,
            )
            raise EhrAuthenticationFailed(
                "EHR authentication failed: the token endpoint refused client "
                f"{self.client_id!r}: {error}" + (f" ({description})" if description else ""),
                retryable=True,
            )
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
        return token, max(lifetime, 1.0)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
