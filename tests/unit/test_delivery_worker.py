"""The delivery worker against respx: delivered, retried (with Retry-After), dead-lettered."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import TypeAdapter
from sqlalchemy.engine import Engine

from fhir_mappings.medication_request import order_from_fhir
from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline, start_of_yesterday
from services.infusion_bridge.delivery.policy import RetryPolicy
from services.infusion_bridge.delivery.worker import DeliveryWorker
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.domain.session_events import SessionEvent
from services.infusion_bridge.ehr.client import EhrClient
from services.infusion_bridge.read_models import DeliveryView
from services.infusion_bridge.store import outbox
from services.infusion_bridge.store.db import make_engine, migrate, transaction
from services.infusion_bridge.usecases.order_intake import PreparedOrder, store_order
from services.infusion_bridge.usecases.sessions import append_event, start_session

BASE = "http://ehr.test/fhir"
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "processing",
            "diagnostics": "HAPI-1094: Patient/pat-1 not found",
        }
    ],
}
OK_BUNDLE = {
    "resourceType": "Bundle",
    "type": "transaction-response",
    "entry": [{"response": {"status": "201 Created", "location": "Encounter/1/_history/1"}}],
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    catalog = load_catalog()
    resource = medication_request(id="ord-w")
    now = datetime.now(UTC)
    with transaction(engine) as db:
        store_order(
            db,
            PreparedOrder(order_from_fhir(resource, catalog), resource),
            source="test",
            now=now,
        )
    sid = start_session(engine, "ord-w", now=now).id
    adapter: TypeAdapter[SessionEvent] = TypeAdapter(SessionEvent)
    for raw in completed_timeline(start_of_yesterday(), vitals=2):
        append_event(
            engine,
            sid,
            adapter.validate_python(raw),
            catalog=catalog,
            identifier_system="urn:test",
            now=now,
        )
    return engine


def _row(engine: Engine) -> DeliveryView:
    with transaction(engine) as db:
        return outbox.list_deliveries(db)[0]


def _worker(engine: Engine, clock: Clock) -> tuple[DeliveryWorker, EhrClient]:
    ehr = EhrClient(BASE)
    worker = DeliveryWorker(
        engine,
        ehr,
        load_catalog(),
        identifier_system="urn:test",
        policy=RetryPolicy(base_seconds=2, cap_seconds=60),
        clock=clock,
        rng=random.Random(7),
    )
    return worker, ehr


@respx.mock
def test_delivers_one_transaction_bundle_with_conditional_creates(engine: Engine) -> None:
    route = respx.post(f"{BASE}/").respond(200, json=OK_BUNDLE)
    clock = Clock()
    worker, ehr = _worker(engine, clock)
    assert asyncio.run(worker.run_once()) == 1
    sent = route.calls.last.request
    bundle = httpx.Response(200, content=sent.content).json()
    assert bundle["type"] == "transaction"
    assert all(e["request"]["ifNoneExist"] for e in bundle["entry"])
    row = _row(engine)
    assert (row.status, row.attempts) == ("delivered", 1)
    assert row.response == {
        "entries": [{"status": "201 Created", "location": "Encounter/1/_history/1"}]
    }
    assert asyncio.run(worker.run_once()) == 0  # nothing left
    asyncio.run(ehr.aclose())


@respx.mock
def test_503_with_retry_after_waits_at_least_that_long(engine: Engine) -> None:
    respx.post(f"{BASE}/").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "30"}, json=OUTCOME),
            httpx.ConnectError("down"),
            httpx.Response(200, json=OK_BUNDLE),
        ]
    )
    clock = Clock()
    worker, _ = _worker(engine, clock)
    asyncio.run(worker.run_once())
    row = _row(engine)
    assert row.status == "pending"
    assert row.next_attempt_at.replace(tzinfo=UTC) >= clock.now + timedelta(seconds=30)
    assert "503" in (row.last_error or "")
    assert asyncio.run(worker.run_once()) == 0  # not due yet
    clock.now += timedelta(seconds=31)
    asyncio.run(worker.run_once())
    row = _row(engine)
    assert (row.status, row.attempts) == ("pending", 2)
    wait = row.next_attempt_at.replace(tzinfo=UTC) - clock.now
    assert timedelta(seconds=2) <= wait <= timedelta(seconds=4)  # 2nd attempt: 2-4 s (jittered)
    clock.now += timedelta(seconds=5)
    asyncio.run(worker.run_once())
    assert (_row(engine).status, _row(engine).attempts) == ("delivered", 3)


@respx.mock
def test_non_retryable_4xx_goes_to_dead_letter_with_the_outcome(engine: Engine) -> None:
    respx.post(f"{BASE}/").respond(400, json=OUTCOME)
    clock = Clock()
    worker, _ = _worker(engine, clock)
    asyncio.run(worker.run_once())
    row = _row(engine)
    assert row.status == "dead"
    assert row.outcome == OUTCOME
    assert "HAPI-1094" in (row.last_error or "")
    clock.now += timedelta(hours=1)
    assert asyncio.run(worker.run_once()) == 0  # dead stays dead until someone retries it
    with transaction(engine) as db:
        outbox.requeue(db, row.id or 0, now=clock.now)
    respx.post(f"{BASE}/").respond(200, json=OK_BUNDLE)
    asyncio.run(worker.run_once())
    assert _row(engine).status == "delivered"


def test_expired_lease_is_taken_again(engine: Engine) -> None:
    clock = Clock()
    row_id = _row(engine).id or 0
    with transaction(engine) as db:
        assert outbox.claim(db, row_id, now=clock.now, lease=timedelta(seconds=60))
    with transaction(engine) as db:
        assert outbox.due_ids(db, now=clock.now, limit=10) == []
        assert outbox.claim(db, row_id, now=clock.now, lease=timedelta(seconds=60)) is None
        later = clock.now + timedelta(seconds=61)
        assert outbox.due_ids(db, now=later, limit=10) == [row_id]


def test_backoff_policy_grows_caps_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=60)
    rng = random.Random(1)
    delays = [policy.delay(n, rng=rng) for n in range(1, 10)]
    assert 0.5 <= delays[0] <= 1
    assert all(d <= 60 for d in delays)
    assert delays[-1] >= 30
    assert policy.delay(1, retry_after=120, rng=rng) == 120


def test_lanes_keep_concurrency_deliveries_in_flight_and_refill(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending = [1, 2, 3, 4, 5]  # each stays due until its delivery ends: never sent twice

    def fake_due(*_a: object, limit: int, exclude: set[int], **_k: object) -> list[int]:
        return [i for i in pending if i not in exclude][:limit]

    monkeypatch.setattr(outbox, "due_ids", fake_due)
    worker, _ = _worker(engine, Clock())
    worker.concurrency = 2
    in_flight, peak, sent = 0, 0, []

    async def fake_deliver(row_id: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        sent.append(row_id)
        pending.remove(row_id)
        in_flight -= 1

    monkeypatch.setattr(worker, "deliver", fake_deliver)
    assert asyncio.run(worker.run_once()) == 5
    assert sorted(sent) == [1, 2, 3, 4, 5]
    assert peak == 2
