"""Signing in to the clinician pages: start (remember the PKCE verifier server-side), finish
(exchange the code, keep the verified claims), look up who a cookie belongs to, sign out."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import httpx
from anyio.to_thread import run_sync

from ..auth.oidc import SignInFailed, WebSignIn, end_session_url
from ..auth.tokens import principal_of
from ..clock import utcnow
from ..domain.access import Principal
from ..domain.errors import Invalid, Unauthenticated
from ..runtime import Runtime
from ..store import web_sessions
from ..store.db import transaction, write_transaction

LOGIN_MINUTES = 10
"""How long a browser may take on the provider's login page."""


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    csrf_token: str


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _safe_next(next_url: str | None) -> str:
    """Only a path on this service (no open redirect)."""
    # "//host" and "/\\host" are other hosts to a browser
    path = next_url or ""
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path[:500]
    return "/ui/sessions"


def sign_in_client(rt: Runtime) -> WebSignIn:
    secret = rt.settings.web_client_secret
    return WebSignIn(
        rt.verifier,
        client_id=rt.settings.web_client_id,
        client_secret=secret.get_secret_value() if secret else None,
        scope=rt.settings.web_scopes,
    )


async def begin(rt: Runtime, redirect_uri: str, next_url: str | None) -> tuple[str, str]:
    """(the new cookie token, the provider URL to send the browser to)."""
    url, state, verifier = await sign_in_client(rt).authorization(redirect_uri)
    cookie = secrets.token_urlsafe(32)

    def store() -> None:
        now = utcnow()
        with write_transaction(rt.engine) as db:
            web_sessions.start(
                db,
                _key(cookie),
                oauth_state=state,
                code_verifier=verifier,
                next_url=_safe_next(next_url),
                csrf_token=secrets.token_urlsafe(24),
                now=now,
                expires_at=now + timedelta(minutes=LOGIN_MINUTES),
            )

    await run_sync(store)
    return cookie, url


async def finish(rt: Runtime, cookie: str | None, redirect_uri: str, state: str, code: str) -> str:
    """Complete the sign-in; returns where to send the browser next."""
    pending = await _load(rt, cookie)
    if pending is None or pending.state != "pending" or pending.code_verifier is None:
        raise Unauthenticated("this sign-in has expired or was already used; sign in again")
    if pending.oauth_state is None or not hmac.compare_digest(pending.oauth_state, state):
        raise Invalid("the sign-in answer does not belong to this browser", "state")
    try:
        claims, id_token = await sign_in_client(rt).exchange(
            redirect_uri, code, pending.code_verifier
        )
    except SignInFailed as exc:
        raise Unauthenticated(str(exc)) from exc

    def store() -> None:
        with write_transaction(rt.engine) as db:
            web_sessions.activate(
                db,
                pending.key,
                claims=claims,
                id_token=id_token,
                expires_at=utcnow() + timedelta(hours=rt.settings.web_session_hours),
                csrf_token=secrets.token_urlsafe(24),
            )

    await run_sync(store)
    return pending.next_url


async def signed_in(rt: Runtime, cookie: str | None) -> SignedIn | None:
    """Who this browser is, if it completed a sign-in that has not ended or expired."""
    found = await _load(rt, cookie)
    if found is None or found.state != "active" or found.claims is None:
        return None
    return SignedIn(principal_of(found.claims), found.csrf_token)


async def sign_out(rt: Runtime, cookie: str | None, csrf_token: str, after: str) -> str:
    """End the session here; returns where to send the browser: the provider's sign-out
    (so its own session ends too), which comes back to ``after``."""
    found = await _load(rt, cookie)
    if found is None:
        return after
    if not hmac.compare_digest(found.csrf_token, csrf_token):
        raise Invalid("the sign-out form is stale; reload the page", "csrf_token")

    def store() -> None:
        with write_transaction(rt.engine) as db:
            web_sessions.end(db, found.key)

    await run_sync(store)
    try:
        at_provider = await end_session_url(rt.verifier, found.id_token, after)
    except (httpx.HTTPError, ValueError):
        at_provider = None
    return at_provider or after


async def _load(rt: Runtime, cookie: str | None) -> web_sessions.WebSession | None:
    if not cookie:
        return None

    def load() -> web_sessions.WebSession | None:
        with transaction(rt.engine) as db:
            return web_sessions.get(db, _key(cookie), now=utcnow())

    return await run_sync(load)
