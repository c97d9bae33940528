"""A local identity provider for in-process API tests and benchmarks: an RSA key, its JWKS
served through an httpx transport, and access tokens minted with PyJWT.

Integration tests use the real Keycloak sandbox instead (``sandbox/keycloak_server.py``).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.infusion_bridge.app import create_app
from services.infusion_bridge.settings import Settings

ISSUER = "http://idp.test/realms/infusion-bridge"
AUDIENCE = "infusion-bridge"
ALL_ROLES = ("nurse", "clinician", "admin", "security-officer")
ALL_SCOPES = "system/*.cruds user/*.cruds"


class LocalIssuer:
    def __init__(self, issuer: str = ISSUER, kid: str = "test-key") -> None:
        self.issuer = issuer
        self.kid = kid

    @cached_property
    def key(self) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def transport(self) -> httpx.MockTransport:
        """Serves the discovery document and the JWKS, as the service fetches them."""

        def handle(request: httpx.Request) -> httpx.Response:
            path = request.url.path
            if path.endswith("/.well-known/openid-configuration"):
                oidc = f"{self.issuer}/protocol/openid-connect"
                return httpx.Response(
                    200,
                    json={
                        "issuer": self.issuer,
                        "jwks_uri": f"{oidc}/certs",
                        "authorization_endpoint": f"{oidc}/auth",
                        "token_endpoint": f"{oidc}/token",
                    },
                )
            if path.endswith("/certs"):
                return httpx.Response(200, json=self.jwks())
            return httpx.Response(404)

        return httpx.MockTransport(handle)

    def token(
        self,
        *,
        roles: Iterable[str] = ALL_ROLES,
        scope: str = ALL_SCOPES,
        sub: str | None = None,
        name: str = "test-user",
        patient: str | None = None,
        client_id: str = "tests",
        audience: str = AUDIENCE,
        issuer: str | None = None,
        expires_in: int = 600,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "aud": audience,
            "sub": sub or f"user-{name}",
            "azp": client_id,
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
            "scope": scope,
            "preferred_username": name,
            "realm_access": {"roles": list(roles)},
        }
        if patient:
            claims["patient"] = patient
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def headers(self, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The settings that make the service trust this issuer."""
        return {"auth_issuer": self.issuer, "auth_audience": AUDIENCE, **overrides}


ISSUER_FOR_TESTS = LocalIssuer()
"""One key for the whole test process (generating RSA keys is slow)."""


def signed_in_app(settings: Settings, issuer: LocalIssuer = ISSUER_FOR_TESTS) -> FastAPI:
    """The app, trusting ``issuer`` (its JWKS served in-process)."""
    return create_app(settings, auth_transport=issuer.transport())


def signed_in_client(
    settings: Settings, issuer: LocalIssuer = ISSUER_FOR_TESTS, **token: Any
) -> TestClient:
    """A TestClient whose requests carry a token of ``issuer`` (all roles and scopes unless
    ``token`` says otherwise)."""
    return TestClient(signed_in_app(settings, issuer), headers=issuer.headers(**token))


@contextmanager
def served_issuer() -> Iterator[LocalIssuer]:
    """A local issuer whose discovery document and JWKS answer over real HTTP (loopback), for
    a service in another process (benchmarks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    issuer = LocalIssuer(issuer=f"http://127.0.0.1:{port}/realms/bench")
    transport = issuer.transport()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = transport.handle_request(httpx.Request("GET", issuer.issuer + self.path))
            body = answer.read()
            self.send_response(answer.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
