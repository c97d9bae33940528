"""Sign-in and authorisation for every entry point over HTTP (``api/`` and ``web/``), and the
audit record each guarded request opens.

Each guarded route declares what it needs (:func:`guard`): a SMART scope and/or a role. The
dependency verifies the bearer token (or, on the web pages, the signed-in session), decides,
and opens the request's audit record, so that allowed and refused requests alike leave one.
It raises ``Unauthenticated`` (the API answers 401 with ``WWW-Authenticate: Bearer``; the
pages send the browser to sign in) or ``Forbidden`` (403).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from .auth.tokens import ProviderUnavailable, TokenError
from .domain.access import CONTEXTS, Principal, Requirement, decide, parse_scopes
from .domain.errors import DomainError, Forbidden, Unauthenticated, Unavailable
from .runtime import Runtime, get_runtime
from .usecases import web_sign_in
from .usecases.audit import AuditEntry, open_request

SIGNED_IN_PRINCIPAL = "infusion.principal"
"""Where a dependency that already knows the caller (the rest-hook secret) leaves it."""
SESSION_COOKIE = "ib_session"
"""The clinician pages' cookie: a random token naming a server-side session."""
PAGE_USER = "infusion.page_user"
"""Where a page finds the signed-in user and its CSRF token (request scope)."""


class SignInRequired(Unauthenticated):
    """A page needs a signed-in user: the browser is sent to sign in, then back."""

    def __init__(self, message: str, next_url: str) -> None:
        super().__init__(message)
        self.next_url = next_url


class PageForbidden(Forbidden):
    """A signed-in user without the role or scope a page needs."""


@dataclass(frozen=True)
class Access:
    """The caller, and the one patient they are limited to (a ``patient/`` token), if any."""

    principal: Principal
    compartment: str | None = None


def need(
    resource: str | None,
    permissions: str = "",
    *,
    contexts: tuple[str, ...] = CONTEXTS,
    roles: tuple[str, ...] = (),
) -> Requirement:
    return Requirement(resource, permissions, frozenset(contexts), frozenset(roles))


SCOPES_IN_USE: set[str] = set()
"""Every scope a route asks for, for ``/.well-known/smart-configuration``."""


def guard(
    requirement: Requirement,
    *,
    interaction: str,
    resource_type: str | None = None,
    page: bool = False,
) -> Callable[[Request], Awaitable[Access]]:
    """A dependency: the caller's :class:`Access`, or 401/403 (audited either way).
    ``page``: a web page, where a signed-in browser session counts as sign-in."""
    if requirement.resource:
        for context in requirement.contexts:
            SCOPES_IN_USE.add(f"{context}/{requirement.resource}.{requirement.permissions}")

    async def dependency(request: Request) -> Access:
        rt = get_runtime(request)
        entry = open_request(_entry(request, interaction, resource_type or requirement.resource))
        request.scope["infusion.audit"] = entry
        try:
            principal = await authenticate(request, rt, page=page)
        except DomainError as exc:
            entry.reason = str(exc)
            if page and isinstance(exc, Unauthenticated):
                raise SignInRequired(str(exc), _here(request)) from exc
            raise
        entry.subject, entry.who = principal.subject, principal.who
        entry.client_id, entry.roles = principal.client_id, tuple(sorted(principal.roles))
        decision = decide(principal, requirement)
        if not decision.allowed:
            entry.reason = f"missing {decision.missing}"
            kind = PageForbidden if page else Forbidden
            raise kind(f"this needs {decision.missing}")
        entry.patient = decision.compartment
        return Access(principal, decision.compartment)

    return dependency


async def authenticate(request: Request, rt: Runtime, *, page: bool = False) -> Principal:
    """The caller behind the request's bearer token (or, on pages, its browser session)."""
    if rt.settings.auth_disabled:
        return LOCAL_EXPERIMENT
    signed_in = request.scope.get(SIGNED_IN_PRINCIPAL)
    if isinstance(signed_in, Principal):
        return signed_in
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if page and not token:
        found = await web_sign_in.signed_in(rt, request.cookies.get(SESSION_COOKIE))
        if found is None:
            raise Unauthenticated("sign in to see this page")
        request.scope[PAGE_USER] = found
        return found.principal
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a bearer token is required")
    try:
        return await rt.verifier.verify(token.strip())
    except ProviderUnavailable as exc:
        raise Unavailable(str(exc)) from exc
    except TokenError as exc:
        raise Unauthenticated(str(exc), bearer_error="invalid_token") from exc


SECRET_HEADER = "x-infusion-hook-secret"  # noqa: S105 (a header name)
REST_HOOK = Principal(
    subject="rest-hook",
    client_id=None,
    roles=frozenset(),
    scopes=parse_scopes("system/MedicationRequest.cud"),
    name="rest-hook (shared secret)",
)
"""Who a rest-hook call is when it carries the shared secret instead of a token."""


async def rest_hook_caller(request: Request) -> None:
    """Rest-hook calls (``/hooks/ehr``) are recorded with source ``subscription``. An EHR
    that can only send a header proves itself with ``INFUSION_HOOK_SECRET`` in
    ``X-Infusion-Hook-Secret``; otherwise the EHR client's bearer token is needed."""
    request.scope["infusion.source"] = "subscription"
    given = request.headers.get(SECRET_HEADER)
    secret = get_runtime(request).settings.hook_secret
    if given is None or secret is None:
        return
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise Unauthenticated("wrong X-Infusion-Hook-Secret header")
    request.scope[SIGNED_IN_PRINCIPAL] = REST_HOOK


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _entry(request: Request, interaction: str, resource_type: str | None) -> AuditEntry:
    route = request.scope.get("route")
    return AuditEntry(
        interaction=interaction,
        method=request.method,
        route=route.path if route is not None else request.scope["path"],
        request_id=str(request.scope.get("infusion.request_id", "")),
        source=request.client.host if request.client else None,
        resource_type=resource_type,
    )


LOCAL_EXPERIMENT = Principal(
    subject="local-experiment",
    client_id=None,
    roles=frozenset({"nurse", "clinician", "admin", "security-officer"}),
    scopes=parse_scopes("system/*.cruds user/*.cruds"),
    name="local experiment (INFUSION_AUTH_DISABLED)",
)
"""Who everyone is when sign-in is switched off (never the default; loopback only)."""
