"""Orders from a real HAPI server: rest-hook Subscription push, pull sync, updates and cancels."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from harness.fhir_payloads import medication_request
from harness.live_service import running_service
from harness.staff_auth import StaffAuth, trusting
from sandbox.hapi_server import HapiSandbox
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.ehr.client import EhrClient
from services.infusion_bridge.settings import Settings
from services.infusion_bridge.store.db import make_engine, migrate, transaction
from services.infusion_bridge.store.order_queries import list_orders
from services.infusion_bridge.store.sync_checkpoints import get_checkpoint
from services.infusion_bridge.usecases.order_sync import CHECKPOINT, SyncSummary, sync_orders

SEND_DELETES = "http://hapifhir.io/fhir/StructureDefinition/subscription-send-delete-messages"


def _settings(
    tmp_path: Path, sandbox: HapiSandbox, keycloak: KeycloakSandbox, **extra: Any
) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        ehr_base_url=sandbox.base_url,
        sync_interval_seconds=0,
        log_format="console",
        **trusting(keycloak),
        **extra,
    )


def _patient(fhir: httpx.Client) -> str:
    created = fhir.post("Patient", json={"resourceType": "Patient", "name": [{"family": "Test"}]})
    created.raise_for_status()
    return f"Patient/{created.json()['id']}"


def _poll(fn: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s (last: {last})")


def test_rest_hook_subscription_keeps_the_cache_current(
    fhir: httpx.Client,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    sandbox: HapiSandbox,
    tmp_path: Path,
) -> None:
    patient = _patient(fhir)
    settings = _settings(tmp_path, sandbox, keycloak, hook_secret=SecretStr("hook-s3cret"))
    with running_service(settings) as service:
        sub = fhir.post(
            "Subscription",
            json={
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "Infusion Bridge order intake",
                "criteria": f"MedicationRequest?subject={patient}",
                "channel": {
                    "type": "rest-hook",
                    "endpoint": f"{service}/hooks/ehr",
                    "payload": "application/fhir+json",
                    "header": ["X-Infusion-Hook-Secret: hook-s3cret"],
                    "extension": [{"url": SEND_DELETES, "valueBoolean": True}],
                },
            },
        ).json()
        try:
            _poll(lambda: fhir.get(f"Subscription/{sub['id']}").json()["status"] == "active", 60)
            created = fhir.post(
                "MedicationRequest",
                json=medication_request(subject={"reference": patient}, requester=None),
            ).json()
            oid = created["id"]

            def cached(status: str, deleted: bool = False) -> dict[str, Any] | None:
                r = httpx.get(f"{service}/orders/{oid}", auth=staff)
                body = r.json() if r.status_code == 200 else None
                ok = body and body["status"] == status and body["deleted"] is deleted
                return body if ok else None

            started = time.monotonic()
            view = _poll(lambda: cached("active"))
            assert time.monotonic() - started < 15
            assert view["source"] == "subscription"
            assert view["drug"]["key"] == "ocrelizumab"

            on_hold = fhir.get(f"MedicationRequest/{oid}").json() | {"status": "on-hold"}
            fhir.put(f"MedicationRequest/{oid}", json=on_hold).raise_for_status()
            assert _poll(lambda: cached("on-hold"))["version"] == 2

            cancelled = fhir.get(f"MedicationRequest/{oid}").json() | {"status": "cancelled"}
            fhir.put(f"MedicationRequest/{oid}", json=cancelled).raise_for_status()
            assert _poll(lambda: cached("cancelled"))["version"] == 3

            fhir.delete(f"MedicationRequest/{oid}").raise_for_status()
            assert _poll(lambda: cached("cancelled", deleted=True))
        finally:
            fhir.delete(f"Subscription/{sub['id']}")


class _Interrupted(Exception):
    pass


def test_pull_sync_of_many_orders_across_pages_interrupted_and_resumed(
    fhir: httpx.Client, sandbox: HapiSandbox, tmp_path: Path
) -> None:
    patient = _patient(fhir)
    total = 520
    for start in range(0, total, 130):
        entries = [
            {
                "resource": medication_request(subject={"reference": patient}, requester=None),
                "request": {"method": "POST", "url": "MedicationRequest"},
            }
            for _ in range(min(130, total - start))
        ]
        r = fhir.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
        assert r.status_code == 200, r.text[:500]

    engine = make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    migrate(engine)
    catalog = load_catalog()

    def interrupt_after_two_pages(summary: SyncSummary) -> None:
        if summary.pages == 2:
            raise _Interrupted

    async def run(on_page: Any = None) -> SyncSummary:
        async with EhrClient(sandbox.base_url) as ehr:
            return await sync_orders(ehr, engine, catalog, page_size=100, on_page=on_page)

    with pytest.raises(_Interrupted):
        asyncio.run(run(interrupt_after_two_pages))
    with transaction(engine) as db:
        checkpoint = get_checkpoint(db, CHECKPOINT)
        first_count, _ = list_orders(db, patient=patient, limit=1)
    assert checkpoint is not None
    assert 0 < first_count < total

    resumed = asyncio.run(run())
    assert resumed.pages >= 3
    with transaction(engine) as db:
        count, _ = list_orders(db, patient=patient, limit=1)
    assert count == total
    # resuming did not start over: it asked only for orders changed since the checkpoint
    in_ehr = fhir.get("MedicationRequest", params={"_summary": "count"}).json()["total"]
    assert resumed.total is not None
    assert resumed.total < in_ehr

    again = asyncio.run(run())
    assert again.outcomes.get("created", 0) == 0
    assert again.outcomes.get("updated", 0) == 0
