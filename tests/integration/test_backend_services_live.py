"""The service calls a HAPI sandbox that demands tokens, as a registered SMART backend
service: Keycloak issues the tokens against the service's client assertions (private_key_jwt,
public key read from a loopback JWKS), HAPI checks them and their system/ scopes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.backend_services import (
    BACKEND_CLIENT,
    BACKEND_CLIENT_60S,
    hapi_admin_token,
    protected_hapi,
    serving_jwks,
    set_client_jwks_url,
)
from harness.ehr_state import SYSTEM, count, ehr_order, ehr_patient, wait_delivered
from harness.fhir_payloads import medication_request
from harness.live_service import running_service
from harness.staff_auth import StaffAuth, trusting
from harness.timelines import completed_timeline, run_session, start_of_yesterday
from sandbox.hapi_server import HapiSandbox
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.app import build_ehr_client
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.ehr.backend_auth import BackendServicesAuth
from services.infusion_bridge.ehr.keys import generate_key_pair, load_signing_key
from services.infusion_bridge.settings import Settings
from services.infusion_bridge.store.db import make_engine, migrate
from services.infusion_bridge.usecases.order_sync import sync_orders


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The registered key and a key the EHR has never seen."""
    folder = tmp_path_factory.mktemp("keys")
    right, wrong = folder / "right.pem", folder / "wrong.pem"
    generate_key_pair(right)
    generate_key_pair(wrong)
    return {"right": right, "wrong": wrong}


@pytest.fixture(scope="module")
def registered(keycloak: KeycloakSandbox, keys: dict[str, Path]) -> Iterator[str]:
    """Both backend clients of the realm read their public key from a loopback JWKS that
    holds only the right key."""
    jwks = json.loads(keys["right"].with_name("right.jwks.json").read_text())
    with serving_jwks(jwks["keys"]) as url:
        for client in (BACKEND_CLIENT, BACKEND_CLIENT_60S):
            set_client_jwks_url(keycloak, client, url)
        yield url


@pytest.fixture(scope="module")
def ehr(keycloak: KeycloakSandbox) -> Iterator[HapiSandbox]:
    box = protected_hapi(keycloak)
    box.start()
    yield box
    box.stop()


@pytest.fixture
def admin(ehr: HapiSandbox, keycloak: KeycloakSandbox) -> Iterator[httpx.Client]:
    """Arranging and checking data in the protected EHR with an all-scopes token."""
    with httpx.Client(
        base_url=ehr.base_url + "/",
        headers={
            "Accept": "application/fhir+json",
            "Content-Type": "application/fhir+json",
            "Authorization": f"Bearer {hapi_admin_token(keycloak)}",
        },
        timeout=60,
    ) as client:
        yield client


def _settings(
    tmp_path: Path, ehr: HapiSandbox, keycloak: KeycloakSandbox, key: Path, **extra: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'store.db'}",
        "ehr_base_url": ehr.base_url,
        "ehr_client_id": BACKEND_CLIENT,
        "ehr_private_key_path": key,
        "sync_interval_seconds": 0,
        "ehr_history_on_order": False,
        "delivery_poll_seconds": 0.5,
        "delivery_retry_base_seconds": 0.5,
        "delivery_retry_cap_seconds": 2,
        "log_format": "console",
        **trusting(keycloak),
    }
    return Settings(**(values | extra))


def test_the_protected_sandbox_refuses_no_token_and_missing_scopes(
    ehr: HapiSandbox, keycloak: KeycloakSandbox, admin: httpx.Client
) -> None:
    assert httpx.get(f"{ehr.base_url}/metadata", timeout=30).status_code == 200
    assert httpx.get(f"{ehr.base_url}/Patient", timeout=30).status_code == 401
    forged = httpx.get(
        f"{ehr.base_url}/Patient", headers={"Authorization": "Bearer x.y.z"}, timeout=30
    )
    assert forged.status_code == 401
    # a token for the service's own API (aud infusion-bridge) is not one for the EHR
    api_token = keycloak.token("ehr")
    wrong_aud = httpx.get(
        f"{ehr.base_url}/Patient", headers={"Authorization": f"Bearer {api_token}"}, timeout=30
    )
    assert wrong_aud.status_code == 401
    assert admin.get("Patient").status_code == 200
    smart = httpx.get(f"{ehr.base_url}/.well-known/smart-configuration", timeout=30).json()
    assert smart["token_endpoint"] == keycloak.token_endpoint


def test_a_completed_session_is_written_back_with_tokens(
    ehr: HapiSandbox,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    admin: httpx.Client,
    registered: str,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    patient = ehr_patient(admin)
    with (
        running_service(_settings(tmp_path, ehr, keycloak, keys["right"])) as url,
        httpx.Client(base_url=url, auth=staff) as svc,
    ):
        order_id = ehr_order(admin, svc, patient)
        sid = run_session(svc, order_id, completed_timeline(start_of_yesterday(), vitals=1))["id"]
        wait_delivered(svc, [sid])
        assert httpx.get(f"{url}/health/ready").status_code == 200
        published = httpx.get(f"{url}/.well-known/jwks.json").json()["keys"]
    assert [k["kid"] for k in published] == [_kid(keys["right"])]
    assert count(admin, "Encounter", identifier=f"{SYSTEM}|{sid}/encounter") == 1
    assert count(admin, "MedicationAdministration", patient=patient) == 3
    assert count(admin, "Observation", patient=patient) == 5


def test_pull_sync_and_a_remote_medication_read_work_with_tokens(
    ehr: HapiSandbox,
    keycloak: KeycloakSandbox,
    admin: httpx.Client,
    registered: str,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    base = medication_request()
    medication_id = f"med-{uuid.uuid4().hex[:10]}"
    admin.put(
        f"Medication/{medication_id}",
        json={
            "resourceType": "Medication",
            "id": medication_id,
            "code": base["medicationCodeableConcept"],
        },
    ).raise_for_status()
    patient = ehr_patient(admin)
    order_id = f"sync-{uuid.uuid4().hex[:10]}"
    order = medication_request(
        id=order_id,
        subject={"reference": patient},
        requester=None,
        medicationCodeableConcept=None,
        medicationReference={"reference": f"Medication/{medication_id}"},
    )
    admin.put(f"MedicationRequest/{order_id}", json=order).raise_for_status()
    settings = _settings(tmp_path, ehr, keycloak, keys["right"])
    engine = make_engine(settings.database_url)
    migrate(engine)

    async def pull() -> tuple[Any, int]:
        async with build_ehr_client(settings) as client:
            summary = await sync_orders(client, engine, load_catalog(None), page_size=50)
            assert isinstance(client.auth, BackendServicesAuth)
            return summary, client.auth.tokens_issued

    summary, tokens = asyncio.run(pull())
    assert summary.rejected == 0, summary
    assert summary.received >= 1
    assert tokens == 1  # every page and the Medication read shared one token
    with running_service(settings) as url:
        got = httpx.get(
            f"{url}/orders/{order_id}",
            headers={"Authorization": f"Bearer {keycloak.token('clinician')}"},
        )
    assert got.status_code == 200, got.text
    assert got.json()["drug"]["key"] == "ocrelizumab"


def _kid(private_key: Path) -> str:
    return load_signing_key(private_key.read_bytes()).kid


def test_a_wrong_key_keeps_deliveries_pending_until_the_right_key_is_configured(
    ehr: HapiSandbox,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    admin: httpx.Client,
    registered: str,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    patient = ehr_patient(admin)
    with (
        running_service(_settings(tmp_path, ehr, keycloak, keys["wrong"])) as url,
        httpx.Client(base_url=url, auth=staff) as svc,
    ):
        order_id = f"ocr-{uuid.uuid4().hex[:12]}"
        body = medication_request(id=order_id, subject={"reference": patient}, requester=None)
        admin.put(f"MedicationRequest/{order_id}", json=body).raise_for_status()
        pushed = svc.put(
            f"/fhir/MedicationRequest/{order_id}",
            json=admin.get(f"MedicationRequest/{order_id}").json(),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert pushed.status_code == 201, pushed.text
        sid = run_session(svc, order_id, completed_timeline(start_of_yesterday(), vitals=1))["id"]
        deadline = time.monotonic() + 30
        delivery: dict[str, Any] = {}
        while time.monotonic() < deadline:
            delivery = svc.get(f"/sessions/{sid}").json()["deliveries"][0]
            if delivery["attempts"] >= 2:
                break
            time.sleep(0.3)
        assert delivery["status"] == "pending", delivery
        assert "EHR authentication failed" in delivery["last_error"], delivery
        assert "invalid_client" in delivery["last_error"], delivery
        ready = httpx.get(f"{url}/health/ready").json()
        assert "authentication failed" in ready["checks"]["ehr"]["reason"]
    assert count(admin, "Encounter", identifier=f"{SYSTEM}|{sid}/encounter") == 0

    with (
        running_service(_settings(tmp_path, ehr, keycloak, keys["right"])) as url,
        httpx.Client(base_url=url, auth=staff) as svc,
    ):
        wait_delivered(svc, [sid], timeout=30)
    assert count(admin, "Encounter", identifier=f"{SYSTEM}|{sid}/encounter") == 1
    assert count(admin, "MedicationAdministration", patient=patient) == 3


def test_sixty_second_tokens_are_renewed_once_per_expiry_not_per_request(
    ehr: HapiSandbox,
    keycloak: KeycloakSandbox,
    registered: str,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, ehr, keycloak, keys["right"], ehr_client_id=BACKEND_CLIENT_60S)

    async def run_for(seconds: float) -> tuple[int, int]:
        requests = 0
        async with build_ehr_client(settings) as client:
            assert isinstance(client.auth, BackendServicesAuth)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await client.search("MedicationRequest", {"_count": "1"})
                requests += 1
                await asyncio.sleep(0.5)
            return requests, client.auth.tokens_issued

    requests, tokens = asyncio.run(run_for(80))
    # renewed at 54 s (60 s less a tenth): one renewal in 80 s, across ~140 requests
    assert requests > 100
    assert tokens == 2
