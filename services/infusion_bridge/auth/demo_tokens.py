"""Tokens from the local demo identity provider, for people trying the API with curl
(``infusion-bridge token --as nurse``). Refuses anything but the demo realm on loopback:
a real provider's users do not have their names as passwords."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

DEMO_REALM = "infusion-bridge"
DEMO_USERS = ("nurse", "clinician", "admin", "security-officer")
DEMO_EHR_CLIENT = ("ehr", "ehr-demo-secret")
"""The demo realm's EHR client (sandbox/keycloak/realm): demo-only, like its users."""
STAFF_SCOPES = (
    "openid user/MedicationRequest.rs user/MedicationAdministration.rs user/Observation.rs "
    "user/Encounter.rs user/AdverseEvent.rs user/Procedure.rs user/AuditEvent.rs "
    "user/Session.rs user/Session.cu"
)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class NotTheDemoRealm(Exception):
    """The configured issuer is not the local demo realm."""


def demo_token(issuer: str, who: str) -> str:
    """A fresh access token for a demo user, or for the EHR client (``who="ehr"``)."""
    parts = urlsplit(issuer)
    if parts.hostname not in LOOPBACK or not parts.path.rstrip("/").endswith(f"/{DEMO_REALM}"):
        raise NotTheDemoRealm(
            f"{issuer} is not the local demo realm: ask your identity provider for a token"
        )
    if who == "ehr":
        form = {"grant_type": "client_credentials"}
        auth: tuple[str, str] | None = DEMO_EHR_CLIENT
    elif who in DEMO_USERS:
        form = {
            "grant_type": "password",
            "client_id": "infusion-bridge-cli",
            "username": who,
            "password": who,
            "scope": STAFF_SCOPES,
        }
        auth = None
    else:
        raise ValueError(f"not a demo identity: {who!r}")
    endpoint = f"{issuer.rstrip('/')}/protocol/openid-connect/token"
    answer = (
        httpx.post(endpoint, data=form, auth=auth, timeout=10)
        if auth
        else httpx.post(endpoint, data=form, timeout=10)
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])
