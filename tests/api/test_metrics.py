"""``/metrics``: parsed with prometheus-client's own parser, its figures match ``/deliveries``."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import respx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from harness.fhir_payloads import medication_request
from harness.identity import signed_in_client
from harness.timelines import completed_timeline, run_session, start_of_yesterday
from services.infusion_bridge.app import build_worker
from services.infusion_bridge.ehr.client import EhrClient
from services.infusion_bridge.settings import Settings
from tests.conftest import FAKE_EHR

REFUSED = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "processing", "diagnostics": "unknown patient"}],
}


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_backlog_and_dead_letters_match_deliveries(
    client: TestClient, settings: Settings
) -> None:
    for n in range(3):  # three patients: none waits behind another's delivery
        put = client.put(
            f"/fhir/MedicationRequest/ocr-m{n}",
            json=medication_request(id=f"ocr-m{n}", subject={"reference": f"Patient/pat-m{n}"}),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert put.status_code == 201
        run_session(client, f"ocr-m{n}", completed_timeline(start_of_yesterday(), vitals=1))
    rt = client.app.state.runtime  # type: ignore[attr-defined]

    async def deliver_once() -> None:  # the EHR refuses one Bundle and is busy for the others
        async with EhrClient(FAKE_EHR, metrics=rt.metrics) as ehr:
            worker = build_worker(settings, rt.engine, ehr, rt.catalog, rt.metrics)
            await worker.run_once()

    with respx.mock(base_url=FAKE_EHR) as ehr:
        ehr.post("/").mock(
            side_effect=[
                httpx.Response(400, json=REFUSED),
                httpx.Response(503),
                httpx.Response(503),
            ]
        )
        asyncio.run(deliver_once())

    pending = client.get("/deliveries", params={"status": "pending"}).json()
    dead = client.get("/deliveries", params={"status": "dead"}).json()
    m = samples(client)

    def value(name: str, **labels: Any) -> float:
        return m[(name, tuple(sorted((k, str(v)) for k, v in labels.items())))]

    assert (len(pending), len(dead)) == (2, 1)
    assert value("infusion_deliveries", status="pending") == len(pending)
    assert value("infusion_deliveries", status="dead") == len(dead)
    assert value("infusion_deliveries", status="delivered") == 0
    assert value("infusion_delivery_dead_letters") == len(dead)
    assert value("infusion_delivery_attempts_total", result="dead") == 1
    assert value("infusion_delivery_attempts_total", result="retry") == 2
    assert value("infusion_ehr_errors_total", kind="client_error") == 1
    assert value("infusion_ehr_errors_total", kind="server_error") == 2
    transactions = value(
        "infusion_ehr_request_duration_seconds_count",
        interaction="transaction",
        outcome="server_error",
    )
    assert transactions == 2
    assert value("infusion_delivery_oldest_pending_age_seconds") > 0
    assert value("infusion_deliveries_failing_long") == 0
    assert math.isnan(value("infusion_sync_lag_seconds"))  # never synced
    # one request per /deliveries call above, by route template and status
    listed = value(
        "infusion_http_request_duration_seconds_count",
        method="GET",
        route="/deliveries",
        status="200",
    )
    assert listed == 2
    sessions_posted = value(
        "infusion_http_request_duration_seconds_count",
        method="POST",
        route="/sessions/{session_id}/events",
        status="201",
    )
    assert sessions_posted == 3 * len(completed_timeline(start_of_yesterday(), vitals=1))


def test_metrics_needs_a_scrape_scope_or_an_admin(settings: Settings) -> None:
    """A scraper's backend client with ``system/Metrics.r``, or an admin with
    ``user/Metrics.r``; not a clinician, not the EHR's client, not without a token."""
    allowed = (
        {"roles": (), "scope": "system/Metrics.r", "client_id": "prometheus"},
        {"roles": ("admin",), "scope": "user/Metrics.r"},
    )
    for token in allowed:
        with signed_in_client(settings, **token) as c:
            assert c.get("/metrics").status_code == 200, token
    refused = (
        {"roles": ("clinician",), "scope": "user/Metrics.r"},
        {"roles": (), "scope": "system/MedicationRequest.cud", "client_id": "ehr"},
    )
    for token in refused:
        with signed_in_client(settings, **token) as c:
            r = c.get("/metrics")
            assert r.status_code == 403, token
            assert r.json()["resourceType"] == "OperationOutcome"
    with signed_in_client(settings) as c:
        assert c.get("/metrics", headers={"Authorization": ""}).status_code == 401
