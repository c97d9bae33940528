"""The Keycloak sandbox issues the tokens the service expects (iss, aud, roles, SMART scopes).

Starts ``KeycloakSandbox`` on ``INFUSION_TEST_KEYCLOAK_PORT`` (default 8181) unless it already
answers there, and stops it at the end if it started it. Uses no conftest fixture.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from sandbox.keycloak_server import API_AUDIENCE, PATIENT_SCOPES, KeycloakSandbox


def claims(token: str) -> dict[str, Any]:
    """The JWT payload, decoded without verifying the signature."""
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def audiences(c: dict[str, Any]) -> list[str]:
    aud = c.get("aud", [])
    return [aud] if isinstance(aud, str) else list(aud)


def test_nurse_token(keycloak: KeycloakSandbox) -> None:
    c = claims(keycloak.token("nurse", scope="openid user/Session.rs user/Observation.rs"))
    assert c["iss"] == keycloak.issuer
    assert audiences(c) == [API_AUDIENCE]
    assert c["azp"] == "infusion-bridge-cli"
    assert c["preferred_username"] == "nurse"
    assert c["realm_access"]["roles"] == ["nurse"]
    assert c["roles"] == ["nurse"]
    scopes = set(c["scope"].split())
    assert {"openid", "user/Session.rs", "user/Observation.rs"} <= scopes
    assert not any(s.startswith("system/") for s in scopes)
    assert c["exp"] - c["iat"] == 300


def test_optional_scopes_only_when_requested(keycloak: KeycloakSandbox) -> None:
    scopes = set(claims(keycloak.token("clinician", scope="openid"))["scope"].split())
    assert not any(s.startswith(("user/", "patient/", "launch/")) for s in scopes)
    staff = set(claims(keycloak.token("clinician"))["scope"].split())
    assert {"user/Session.rs", "user/MedicationRequest.rs"} <= staff


def test_patient_launch_context(keycloak: KeycloakSandbox) -> None:
    c = claims(keycloak.token("clinician", scope=PATIENT_SCOPES))
    assert c["patient"] == "demo-patient-1"
    assert "patient/*.rs" in c["scope"].split()


def test_test_only_clients_and_realm(keycloak: KeycloakSandbox) -> None:
    assert (
        claims(keycloak.token("nurse", client_id="infusion-bridge-expiring"))["exp"]
        - claims(keycloak.token("nurse", client_id="infusion-bridge-expiring"))["iat"]
        <= 1
    )
    assert "infusion-bridge" not in str(
        claims(keycloak.token("nurse", client_id="other-app")).get("aud")
    )
    elsewhere = claims(keycloak.token("nurse", realm="elsewhere"))
    assert elsewhere["iss"].endswith("/realms/elsewhere")


def test_each_demo_user_has_its_role(keycloak: KeycloakSandbox) -> None:
    for user in ("clinician", "admin", "security-officer"):
        c = claims(keycloak.token(user))
        assert c["realm_access"]["roles"] == [user]
        assert c["email_verified"] is True


def test_ehr_token(keycloak: KeycloakSandbox) -> None:
    c = claims(keycloak.token("ehr"))
    assert c["iss"] == keycloak.issuer
    assert audiences(c) == [API_AUDIENCE]
    assert c["azp"] == "ehr"
    assert c["client_id"] == "ehr"
    assert set(c["scope"].split()) == {
        "system/MedicationRequest.cud",
        "system/MedicationRequest.rs",
    }
    assert c["exp"] - c["iat"] == 300


def test_wrong_password_is_refused(keycloak: KeycloakSandbox) -> None:
    r = httpx.post(
        keycloak.token_endpoint,
        data={
            "grant_type": "password",
            "client_id": "infusion-bridge-cli",
            "username": "nurse",
            "password": "not-the-password",
        },
        timeout=30,
    )
    assert r.status_code in (400, 401)  # 26.7.3 answers 400
    assert r.json()["error"] == "invalid_grant"
