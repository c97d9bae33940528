"""Real Keycloak tokens for tests that drive the live service through one HTTP client:
each request carries the token of the demo identity whose job it is (the EHR pushes orders,
a nurse charts, an admin retries deliveries, a clinician reads). The route-table test checks
the other identities are refused."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import httpx

from sandbox.keycloak_server import KeycloakSandbox


def identity_for(method: str, path: str) -> str:
    """Which demo identity makes this request in a real deployment."""
    if path.startswith("/hooks/") or (
        path.startswith("/fhir") and method in ("POST", "PUT", "DELETE")
    ):
        return "ehr"
    if path.startswith("/sessions") and method == "POST":
        return "nurse"
    if path.startswith("/deliveries") or path == "/metrics":
        return "admin"
    if path.startswith("/fhir/AuditEvent"):
        return "security-officer"
    return "clinician"


class StaffAuth(httpx.Auth):
    def __init__(self, keycloak: KeycloakSandbox) -> None:
        self.keycloak = keycloak
        self._tokens: dict[str, tuple[str, float]] = {}

    def token(self, who: str) -> str:
        cached = self._tokens.get(who)
        if cached is None or cached[1] < time.monotonic():
            self._tokens[who] = (self.keycloak.token(who), time.monotonic() + 240)  # live 300 s
        return self._tokens[who][0]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        who = identity_for(request.method, request.url.path)
        request.headers["Authorization"] = f"Bearer {self.token(who)}"
        yield request


def trusting(keycloak: KeycloakSandbox) -> dict[str, Any]:
    """Settings that make the service accept the sandbox's tokens."""
    return {"auth_issuer": keycloak.issuer, "auth_audience": "infusion-bridge"}


def trusting_env(keycloak: KeycloakSandbox) -> dict[str, str]:
    """The same settings as environment variables, for a service in another process."""
    return {f"INFUSION_{name.upper()}": str(value) for name, value in trusting(keycloak).items()}
