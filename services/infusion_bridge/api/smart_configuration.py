"""``GET /.well-known/smart-configuration``: where to sign in and which scopes this FHIR
server understands (SMART App Launch 2.x discovery). Public, like ``/fhir/metadata``."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..access import SCOPES_IN_USE
from ..domain.errors import Unavailable
from .deps import RuntimeDep

router = APIRouter(tags=["fhir"])


@router.get("/.well-known/smart-configuration")
@router.get("/fhir/.well-known/smart-configuration", include_in_schema=False)
async def smart_configuration(rt: RuntimeDep) -> JSONResponse:
    """The identity provider's endpoints and the SMART scopes the routes check."""
    try:
        oidc = await rt.verifier.discovery()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unavailable("the identity provider does not answer its discovery URL") from exc
    return JSONResponse(smart_document(oidc))


def smart_document(oidc: dict[str, Any]) -> dict[str, Any]:
    return {
        "issuer": oidc.get("issuer"),
        "jwks_uri": oidc.get("jwks_uri"),
        "authorization_endpoint": oidc.get("authorization_endpoint"),
        "token_endpoint": oidc.get("token_endpoint"),
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "launch/patient", *sorted(SCOPES_IN_USE)],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-standalone-patient",
            "sso-openid-connect",
            "permission-v2",
            "permission-patient",
            "permission-user",
        ],
    }
