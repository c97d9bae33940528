"""Verify access tokens: JWTs signed by the identity provider, checked with PyJWT against its
JWKS (signature, ``iss``, ``aud``, ``exp``/``nbf`` with a small leeway).

Keys are cached by ``kid``; an unknown ``kid`` refetches the key set, at most once every
``refresh_interval`` seconds, so a flood of forged ``kid``s cannot hammer the provider.

A token that verified is remembered (in memory, by its exact text) for at most
``VERIFIED_FOR`` seconds and never past its ``exp``: a client sends the same token with
every request until it expires, and checking an RSA signature and decoding the JWT again
each time was the biggest single cost of a request. Only successes are remembered, so a
forged or altered token (another text) is always verified in full.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt

from ..domain.access import Principal, parse_scopes
from ..logging import get_logger

log = get_logger(__name__)
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "ES256", "ES384")


VERIFIED_FOR = 30.0
"""Seconds a verified token is taken on trust again (bounded by its own ``exp``)."""
VERIFIED_MAX = 4096
"""Tokens remembered at once; the oldest is forgotten first."""


class TokenError(Exception):
    """The token is missing, malformed, expired, or not ours; ``str()`` says which (no PHI)."""


class ProviderUnavailable(TokenError):
    """The identity provider's key set cannot be fetched and no cached key fits."""


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        http: httpx.AsyncClient,
        jwks_url: str | None = None,
        leeway_seconds: float = 30,
        refresh_interval: float = 5,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.http = http
        self.jwks_url = jwks_url
        self.leeway = leeway_seconds
        self.refresh_interval = refresh_interval
        self._discovery: dict[str, Any] | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._verified: dict[str, tuple[float, Principal]] = {}

    async def verify(self, token: str) -> Principal:
        """The caller behind ``token``; raises :class:`TokenError` for any bad token."""
        now = time.time()
        known = self._verified.get(token)
        if known is not None:
            if now < known[0]:
                return known[1]
            del self._verified[token]
        claims = await self.claims(token)
        principal = principal_of(claims)
        until = min(now + VERIFIED_FOR, float(claims["exp"]))
        if until > now:
            if len(self._verified) >= VERIFIED_MAX:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (until, principal)
        return principal

    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``; raises :class:`TokenError` for any bad token."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("the token is not a JWT") from exc
        kid, alg = header.get("kid"), header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenError(f"algorithm {alg!r} is not accepted")
        key = await self._key(str(kid))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError(f"the token is not for audience {self.audience!r}") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("the token was issued by another provider") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenError("the token's signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"the token is not valid: {exc}") from exc
        return claims

    async def _key(self, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            if (
                kid not in self._keys
                and time.monotonic() - self._fetched_at >= self.refresh_interval
            ):
                await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise TokenError("the token's signing key is not one of the provider's keys")
        return key

    async def discovery(self) -> dict[str, Any]:
        """The provider's OpenID configuration (fetched once)."""
        if self._discovery is None:
            meta = await self.http.get(f"{self.issuer}/.well-known/openid-configuration")
            meta.raise_for_status()
            document = meta.json()
            if not isinstance(document, dict):
                raise ValueError("the OpenID configuration is not an object")
            self._discovery = document
        return self._discovery

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            if self.jwks_url is None:
                self.jwks_url = str((await self.discovery())["jwks_uri"])
            answer = await self.http.get(self.jwks_url)
            answer.raise_for_status()
            key_set = jwt.PyJWKSet.from_dict(answer.json())
        except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
            log.warning("jwks_unavailable", error=type(exc).__name__)
            if not self._keys:
                raise ProviderUnavailable("the identity provider's keys cannot be fetched") from exc
            return
        self._keys = {str(k.key_id): k for k in key_set.keys if k.key_id}
        log.info("jwks_refreshed", keys=len(self._keys))


def principal_of(claims: dict[str, Any]) -> Principal:
    """The caller described by verified claims (Keycloak puts realm roles in ``realm_access``)."""
    roles = set(claims.get("roles") or ())
    realm_access = claims.get("realm_access")
    if isinstance(realm_access, dict):
        roles |= set(realm_access.get("roles") or ())
    scope = str(claims.get("scope") or "")
    patient = claims.get("patient")
    return Principal(
        subject=str(claims["sub"]),
        client_id=claims.get("azp") or claims.get("client_id"),
        roles=frozenset(str(r) for r in roles),
        scopes=parse_scopes(scope),
        patient=f"Patient/{patient}" if isinstance(patient, str) and patient else None,
        name=claims.get("preferred_username"),
        raw_scope=scope,
    )
