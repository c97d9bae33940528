"""SMART Backend Services in tests: a loopback JWKS the Keycloak realm reads the service's
public key from, registering that URL on the realm's backend clients (admin API), a HAPI
sandbox that demands tokens, and an admin client for arranging data in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from harness.live_service import free_port
from harness.local_http import serving
from sandbox.hapi_server import HapiSandbox
from sandbox.keycloak_server import REALM, KeycloakSandbox

BACKEND_CLIENT = "infusion-bridge-backend"
BACKEND_CLIENT_60S = "infusion-bridge-backend-60s"
HAPI_AUDIENCE = "hapi-sandbox"
HAPI_ADMIN = ("hapi-sandbox-admin", "hapi-admin-demo-secret")  # demo realm only


@contextmanager
def serving_jwks(keys: list[dict[str, Any]]) -> Iterator[str]:
    """Serve ``{"keys": keys}`` on a free loopback port; yields the URL."""
    body = json.dumps({"keys": keys}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    with serving(Handler) as base:
        yield f"{base}/.well-known/jwks.json"


def set_client_jwks_url(keycloak: KeycloakSandbox, client_id: str, jwks_url: str) -> None:
    """Point a realm client's ``private_key_jwt`` keys at ``jwks_url`` (master admin API)."""
    admin = httpx.post(
        f"{keycloak.base_url}/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": "admin",
            "password": "admin",
        },
        timeout=30,
    )
    admin.raise_for_status()
    headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    base = f"{keycloak.base_url}/admin/realms/{REALM}/clients"
    found = httpx.get(base, params={"clientId": client_id}, headers=headers, timeout=30)
    found.raise_for_status()
    client = found.json()[0]
    client["attributes"] = {
        **client.get("attributes", {}),
        "use.jwks.url": "true",
        "jwks.url": jwks_url,
    }
    httpx.put(f"{base}/{client['id']}", json=client, headers=headers, timeout=30).raise_for_status()


def protected_hapi(keycloak: KeycloakSandbox) -> HapiSandbox:
    """A HAPI sandbox on a free port that demands tokens from ``keycloak`` (aud hapi-sandbox)."""
    return HapiSandbox(
        port=free_port(),
        on_disk=False,
        extra_env={
            "HAPI_AUTH_ISSUER": keycloak.issuer,
            "HAPI_AUTH_AUDIENCE": HAPI_AUDIENCE,
            "HAPI_WARMUP": "0",
        },
    )


def hapi_admin_token(keycloak: KeycloakSandbox, scope: str | None = None) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": HAPI_ADMIN[0],
        "client_secret": HAPI_ADMIN[1],
    }
    if scope:
        form["scope"] = scope
    r = httpx.post(keycloak.token_endpoint, data=form, timeout=30)
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token
