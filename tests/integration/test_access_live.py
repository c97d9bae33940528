"""The access table against the real identity provider: every route with real Keycloak
tokens — none, expired, for another audience, from another issuer, with a broken signature,
from someone without the scope or role, and from the one who may — and one audit record
per request. The AuditEvents then pass HAPI's $validate."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.fhir_payloads import medication_request
from harness.live_service import running_service
from harness.route_table import Arranged, Case, arrange, cases
from harness.staff_auth import trusting
from sandbox.keycloak_server import PATIENT_SCOPES, KeycloakSandbox
from services.infusion_bridge.settings import Settings

PAGES = ("/ui/", "/docs", "/openapi.json")


@pytest.fixture(scope="module")
def service(keycloak: KeycloakSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path_factory.mktemp('access') / 'store.db'}",
        ehr_base_url="http://127.0.0.1:9/fhir",  # nothing here calls the EHR
        sync_interval_seconds=0,
        delivery_enabled=False,
        log_format="console",
        auth_leeway_seconds=0,  # so that a 1-second token is expired 2 seconds later
        **trusting(keycloak),
    )
    with running_service(settings) as url:
        yield url


class As:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def tokens(keycloak: KeycloakSandbox) -> dict[str, str]:
    who = ("ehr", "nurse", "clinician", "admin", "security-officer")
    good = {w: keycloak.token(w) for w in who}
    expiring = keycloak.token("clinician", client_id="infusion-bridge-expiring")
    header, payload, signature = good["clinician"].split(".")
    flipped = (
        base64.urlsafe_b64encode(
            bytes([base64.urlsafe_b64decode(signature + "==")[0] ^ 1])
            + base64.urlsafe_b64decode(signature + "==")[1:]
        )
        .rstrip(b"=")
        .decode()
    )
    time.sleep(2.5)
    return {
        **good,
        "expired": expiring,
        "wrong audience": keycloak.token("clinician", client_id="other-app"),
        "wrong issuer": keycloak.token("nurse", realm="elsewhere"),
        "bad signature": f"{header}.{payload}.{flipped}",
        "patient-launch": keycloak.token("clinician", scope=PATIENT_SCOPES),
    }


@pytest.fixture(scope="module")
def arranged(service: str, tokens: dict[str, str]) -> Arranged:
    return arrange(lambda who: As(service, tokens[who]))


def audit_count(service: str, tokens: dict[str, str]) -> int:
    r = As(service, tokens["security-officer"]).request("GET", "/fhir/AuditEvent?_count=1")
    r.raise_for_status()
    total: int = r.json()["total"]
    return total  # this read itself is audited too, after the count


def test_every_route_with_real_tokens(
    service: str, tokens: dict[str, str], arranged: Arranged
) -> None:
    for case in cases(arranged):
        _check(service, tokens, case)


def _check(service: str, tokens: dict[str, str], case: Case) -> None:
    page = case.route.startswith(PAGES)
    refused = 303 if page else 401
    attempts = [("no token", None, refused)]
    attempts += [
        (name, tokens[name], refused)
        for name in ("expired", "wrong audience", "wrong issuer", "bad signature")
    ]
    if case.denied is not None:
        attempts.append((f"as {case.denied}", tokens[case.denied], 403))
    attempts.append((f"as {case.allowed}", tokens[case.allowed], None))
    for label, token, expected in attempts:
        before = audit_count(service, tokens)
        headers = {**case.headers, **({"Authorization": f"Bearer {token}"} if token else {})}
        r = httpx.request(
            case.method,
            service + case.url,
            headers=headers,
            json=case.json,
            timeout=30,
            follow_redirects=False,
        )
        where = f"{case.method} {case.url} {label}"
        if expected is None:
            assert r.status_code in case.ok, f"{where}: {r.status_code} {r.text[:300]}"
        else:
            assert r.status_code == expected, f"{where}: {r.status_code} {r.text[:300]}"
        if r.status_code == 401:
            assert r.headers["www-authenticate"].startswith("Bearer"), where
        after = audit_count(service, tokens)
        # one record for the request, one for the security officer's count before it
        assert after - before == 2, f"{where}: {after - before - 1} audit records"


def test_a_patient_launch_sees_only_its_patient(
    service: str, tokens: dict[str, str], arranged: Arranged, keycloak: KeycloakSandbox
) -> None:
    me = As(service, tokens["patient-launch"])
    ehr = As(service, tokens["ehr"])
    body = {
        "resourceType": "MedicationRequest",
        **_order_body("Patient/demo-patient-1"),
    }
    assert ehr.request("PUT", "/fhir/MedicationRequest/demo-1", json=body).status_code in (200, 201)
    mine = me.request("GET", "/orders").json()
    assert [o["id"] for o in mine["items"]] == ["demo-1"]
    assert me.request("GET", f"/orders/{arranged.other_order_id}").status_code == 404
    assert me.request("GET", f"/sessions/{arranged.other_session_id}").status_code == 404
    assert me.request("GET", "/sessions").json()["total"] == 0
    assert me.request("GET", "/fhir/Observation?patient=route-table").json()["total"] == 0
    assert me.request("GET", "/patients/route-table/infusions").status_code == 404
    assert me.request("POST", "/patients/route-table/ehr-history").status_code == 404


def _order_body(patient: str) -> dict[str, Any]:
    body = medication_request(id="demo-1", subject={"reference": patient})
    body.pop("resourceType")
    return body


def test_audit_events_pass_hapi_validate(
    service: str, tokens: dict[str, str], arranged: Arranged, fhir: httpx.Client
) -> None:
    officer = As(service, tokens["security-officer"])
    kinds: dict[tuple[str, str], dict[str, Any]] = {}
    for offset in range(0, 4000, 200):
        page = officer.request("GET", f"/fhir/AuditEvent?_count=200&_offset={offset}").json()
        for entry in page.get("entry", []):
            event = entry["resource"]
            kinds.setdefault((event["action"], event["outcome"]), event)
        if offset + 200 >= page["total"]:
            break
    assert {("R", "0"), ("R", "4"), ("C", "0"), ("U", "0")} <= set(kinds)
    for event in kinds.values():
        outcome = fhir.post("AuditEvent/$validate", json=event).json()
        errors = [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]
        assert not errors, (event, errors)


def test_the_hook_takes_the_ehr_token_or_the_secret(
    keycloak: KeycloakSandbox, tmp_path: Path, tokens: dict[str, str]
) -> None:
    from pydantic import SecretStr

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'hook.db'}",
        ehr_base_url="http://127.0.0.1:9/fhir",
        sync_interval_seconds=0,
        delivery_enabled=False,
        log_format="console",
        hook_secret=SecretStr("s3cret"),
        **trusting(keycloak),
    )
    body = {"resourceType": "MedicationRequest", **_order_body("Patient/hook")}
    body["id"] = "hook-1"
    fhir_json = {"Content-Type": "application/fhir+json"}
    with running_service(settings) as url:
        put = f"{url}/hooks/ehr/MedicationRequest/hook-1"
        assert httpx.put(put, json=body, headers=fhir_json).status_code == 401
        by_secret = httpx.put(
            put, json=body, headers={**fhir_json, "X-Infusion-Hook-Secret": "s3cret"}
        )
        assert by_secret.status_code == 201
        by_token = httpx.put(
            put, json=body, headers={**fhir_json, "Authorization": f"Bearer {tokens['ehr']}"}
        )
        assert by_token.status_code == 200
        nurse = httpx.put(
            put, json=body, headers={**fhir_json, "Authorization": f"Bearer {tokens['nurse']}"}
        )
        assert nurse.status_code == 403
