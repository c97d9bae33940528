"""Operations against the live sandbox: no head-of-line blocking behind a slow Bundle, and a
backlog that drains within seconds of the EHR's return, once; ``/metrics`` agreeing with
``/deliveries`` along the way, and scraped with a real token (an admin's, or the Prometheus
client's ``system/Metrics.r``)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.ehr_state import SYSTEM, count, ehr_order, ehr_patient, wait_delivered
from harness.live_service import running_service
from harness.slow_proxy import slow_proxy
from harness.staff_auth import StaffAuth, trusting
from harness.timelines import completed_timeline, run_session, start_of_yesterday
from sandbox.hapi_server import HapiSandbox
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.settings import Settings

HELD_SECONDS = 5


def _settings(
    tmp_path: Path, ehr_base_url: str, keycloak: KeycloakSandbox, **extra: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'store.db'}",
        "ehr_base_url": ehr_base_url,
        "sync_interval_seconds": 0,
        "log_format": "console",
        "ehr_timeout_seconds": 30,
        **trusting(keycloak),
    }
    return Settings(**(values | extra))


def scrape(svc: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` parsed by prometheus-client's own parser: (sample name, labels) -> value."""
    response = svc.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def deliveries_metric(metrics: dict[Any, float], status: str) -> float:
    return metrics[("infusion_deliveries", (("status", status),))]


def test_prometheus_scrapes_with_its_own_client_token(
    keycloak: KeycloakSandbox, tmp_path: Path
) -> None:
    """A scraper authenticates as a backend client with ``system/Metrics.r`` (client
    credentials); the EHR's client, which lacks that scope, is refused, and so is no token."""
    settings = _settings(
        tmp_path, "http://127.0.0.1:9/fhir", keycloak, delivery_enabled=False
    )  # nothing listens at the EHR: the probe fails fast
    with running_service(settings) as url:
        prometheus = {"Authorization": f"Bearer {keycloak.token('prometheus')}"}
        with httpx.Client(base_url=url, timeout=30, headers=prometheus) as scraper:
            metrics = scrape(scraper)
        assert deliveries_metric(metrics, "pending") == 0
        assert metrics[("infusion_ehr_up", ())] == 0
        ehr = {"Authorization": f"Bearer {keycloak.token('ehr')}"}
        refused = httpx.get(f"{url}/metrics", headers=ehr, timeout=30)
        assert refused.status_code == 403
        assert "Metrics.r" in refused.text
        assert httpx.get(f"{url}/metrics", timeout=30).status_code == 401


def _delivered_at(svc: httpx.Client, sid: str) -> datetime:
    delivery = svc.get(f"/sessions/{sid}").json()["deliveries"][0]
    assert delivery["status"] == "delivered", delivery
    return datetime.fromisoformat(delivery["delivered_at"])


def test_one_bundle_held_by_a_slow_ehr_does_not_hold_up_ten_others(
    fhir: httpx.Client,
    sandbox: HapiSandbox,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    tmp_path: Path,
) -> None:
    slow_patient = ehr_patient(fhir)
    others = [ehr_patient(fhir) for _ in range(10)]
    held = f'"{slow_patient}"'.encode()
    with (
        slow_proxy(sandbox.base_url, HELD_SECONDS, hold=lambda body: held in body) as (
            proxy,
            forwarded,
        ),
        running_service(_settings(tmp_path, proxy, keycloak, delivery_concurrency=4)) as url,
        httpx.Client(base_url=url, timeout=30, auth=staff) as svc,
    ):
        slow_order = ehr_order(fhir, svc, slow_patient)
        orders = [ehr_order(fhir, svc, p) for p in others]
        timeline = completed_timeline(start_of_yesterday(), vitals=1)
        slow_sid = run_session(svc, slow_order, timeline)["id"]
        assert forwarded.wait(10), "the slow Bundle never reached the EHR"
        held_since = time.monotonic()
        sids = [run_session(svc, order, timeline)["id"] for order in orders]
        wait_delivered(svc, sids, timeout=HELD_SECONDS)
        assert time.monotonic() - held_since < HELD_SECONDS  # all ten while it was held
        still = svc.get(f"/sessions/{slow_sid}").json()["deliveries"][0]["status"]
        assert still == "delivering"
        wait_delivered(svc, [slow_sid], timeout=HELD_SECONDS + 10)
        slow_done = _delivered_at(svc, slow_sid)
        assert all(_delivered_at(svc, sid) < slow_done for sid in sids)
    for sid in [slow_sid, *sids]:
        assert count(fhir, "Encounter", identifier=f"{SYSTEM}|{sid}/encounter") == 1


@pytest.mark.disruptive
def test_a_backlog_drains_within_seconds_of_the_ehrs_return_once(
    fhir: httpx.Client,
    sandbox: HapiSandbox,
    keycloak: KeycloakSandbox,
    staff: StaffAuth,
    tmp_path: Path,
) -> None:
    """Backoff grows to minutes during the outage (cap 120 s): without the bring-forward the
    backlog would wait for those delays after the EHR is back."""
    patients = [ehr_patient(fhir) for _ in range(3)]
    settings = _settings(
        tmp_path,
        sandbox.base_url,
        keycloak,
        delivery_retry_base_seconds=2,
        delivery_retry_cap_seconds=120,
        delivery_poll_seconds=30,
        ehr_probe_interval_seconds=1,
        ehr_probe_timeout_seconds=1,
        delivery_recovery_spread_seconds=2,
    )
    with (
        running_service(settings) as url,
        httpx.Client(base_url=url, timeout=30, auth=staff) as svc,
    ):
        orders = [ehr_order(fhir, svc, p) for p in patients]
        sandbox.stop()
        try:
            sids = [
                run_session(svc, order, completed_timeline(start_of_yesterday(), vitals=2))["id"]
                for order in orders
            ]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # let the delays grow past the EHR's restart
                waiting = svc.get("/deliveries", params={"status": "pending"}).json()
                if waiting and min(d["attempts"] for d in waiting) >= 4:
                    break
                time.sleep(1)
            assert sorted(d["session_id"] for d in waiting) == sorted(sids)
            metrics = scrape(svc)
            assert deliveries_metric(metrics, "pending") == len(waiting) == 3
            assert metrics[("infusion_ehr_up", ())] == 0
            assert metrics[("infusion_delivery_oldest_pending_age_seconds", ())] > 0
            ready = svc.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["ehr"]["status"] == "down"
        finally:
            sandbox.start()
        back = time.monotonic()
        wait_delivered(svc, sids, timeout=10)
        print(f"backlog delivered {time.monotonic() - back:.1f}s after the EHR's return")
        metrics = scrape(svc)
        delivered = svc.get("/deliveries", params={"status": "delivered"}).json()
        assert deliveries_metric(metrics, "delivered") == len(delivered) == 3
        assert deliveries_metric(metrics, "pending") == 0
        assert metrics[("infusion_delivery_oldest_pending_age_seconds", ())] == 0
        unavailable = metrics[("infusion_ehr_errors_total", (("kind", "unavailable"),))]
        assert unavailable >= 4 * 3
    for sid, patient in zip(sids, patients, strict=True):
        assert count(fhir, "Encounter", identifier=f"{SYSTEM}|{sid}/encounter") == 1
        assert count(fhir, "Encounter", patient=patient) == 1
