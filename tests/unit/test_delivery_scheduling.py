"""How the worker schedules: lanes kept full, patients in order, the retry horizon, the
failing-long warning, and deliveries brought forward when the EHR comes back."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from fhir_mappings.medication_request import order_from_fhir
from harness.fhir_payloads import medication_request
from services.infusion_bridge.delivery.policy import RetryPolicy
from services.infusion_bridge.delivery.worker import DeliveryWorker
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.ehr.client import EhrClient
from services.infusion_bridge.ehr.health import EhrHealth
from services.infusion_bridge.metrics import Metrics
from services.infusion_bridge.read_models import DeliveryView
from services.infusion_bridge.store import outbox
from services.infusion_bridge.store.db import make_engine, migrate, transaction
from services.infusion_bridge.usecases.order_intake import PreparedOrder, store_order
from services.infusion_bridge.usecases.sessions import start_session

BASE = "http://ehr.test/fhir"
OK_BUNDLE = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    migrate(engine)
    return engine


def queue(engine: Engine, patient: str, now: datetime) -> int:
    """A session of ``patient`` whose write-back is queued; the payload names the patient."""
    catalog = load_catalog()
    resource = medication_request(
        id=f"o-{patient}-{now.timestamp():.0f}-{random.randrange(10**9)}",
        subject={"reference": f"Patient/{patient}"},
    )
    with transaction(engine) as db:
        store_order(
            db, PreparedOrder(order_from_fhir(resource, catalog), resource), source="t", now=now
        )
    sid = start_session(engine, resource["id"], now=now).id
    with transaction(engine) as db:
        return outbox.enqueue(
            db, sid, payload={"resourceType": "Bundle", "patient": patient}, now=now
        )


def row(engine: Engine, row_id: int) -> DeliveryView:
    with transaction(engine) as db:
        return next(d for d in outbox.list_deliveries(db, limit=500) if d.id == row_id)


def due(engine: Engine, now: datetime) -> list[int]:
    with transaction(engine) as db:
        return outbox.due_ids(db, now=now, limit=50)


def worker(engine: Engine, clock: Clock, **policy: Any) -> DeliveryWorker:
    return DeliveryWorker(
        engine,
        EhrClient(BASE),
        load_catalog(),
        identifier_system="urn:test",
        policy=RetryPolicy(**({"base_seconds": 60, "cap_seconds": 300} | policy)),
        clock=clock,
        rng=random.Random(3),
        metrics=Metrics(),
    )


def test_a_patients_later_delivery_waits_for_the_earlier_one_others_do_not(
    engine: Engine,
) -> None:
    clock = Clock()
    a1, b1, a2 = (queue(engine, p, clock.now) for p in ("a", "b", "a"))
    assert due(engine, clock.now) == [a1, b1]  # a2 waits behind a1
    with transaction(engine) as db:  # a1 fails and waits on a backoff: a2 still waits
        outbox.claim(db, a1, now=clock.now, lease=timedelta(seconds=60))
        outbox.mark_retry(db, a1, error="down", at=clock.now + timedelta(minutes=5), now=clock.now)
    assert due(engine, clock.now) == [b1]
    with transaction(engine) as db:
        outbox.mark_dead(db, a1, error="refused", outcome=None, now=clock.now)
    assert due(engine, clock.now) == [b1, a2]  # a dead one is an operator's: it holds nothing


@respx.mock
def test_one_slow_delivery_never_stops_the_others(engine: Engine) -> None:
    clock = Clock()
    slow = queue(engine, "slow", clock.now)
    fast = [queue(engine, f"p{i}", clock.now) for i in range(10)]
    w = worker(engine, clock)
    w.concurrency = 4
    release = asyncio.Event()
    done_fast: list[str] = []

    async def transaction_(bundle: dict[str, Any]) -> dict[str, Any]:
        if bundle["patient"] == "slow":
            await release.wait()
        else:
            await asyncio.sleep(0.01)
            done_fast.append(bundle["patient"])
        return OK_BUNDLE

    w.ehr.transaction = transaction_  # type: ignore[method-assign]

    async def scenario() -> None:
        runner = asyncio.create_task(w.run(poll_seconds=30))
        for _ in range(200):
            if len(done_fast) == 10:
                break
            await asyncio.sleep(0.01)
        assert len(done_fast) == 10, done_fast  # all delivered while the slow one hangs
        assert row(engine, slow).status == "delivering"
        late = queue(engine, "late", clock.now)  # queued while the slow one still hangs
        w.notify()
        for _ in range(200):
            if row(engine, late).status == "delivered":
                break
            await asyncio.sleep(0.01)
        assert row(engine, late).status == "delivered"
        release.set()
        for _ in range(200):
            if row(engine, slow).status == "delivered":
                break
            await asyncio.sleep(0.01)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner

    asyncio.run(scenario())
    assert [row(engine, i).status for i in [slow, *fast]] == ["delivered"] * 11


@respx.mock
def test_transient_failures_dead_letter_after_the_horizon_with_a_warning_first(
    engine: Engine,
) -> None:
    respx.post(f"{BASE}/").mock(side_effect=httpx.ConnectError("down"))
    clock = Clock()
    row_id = queue(engine, "h", clock.now)
    started = clock.now
    w = worker(engine, clock, horizon=timedelta(hours=2), warn_after=timedelta(minutes=15))

    def attempt_when_due() -> list[dict[str, Any]]:
        clock.now = row(engine, row_id).next_attempt_at.replace(tzinfo=UTC)
        with capture_logs() as logs:
            assert asyncio.run(w.run_once()) == 1
        return logs

    with capture_logs() as first:
        asyncio.run(w.run_once())
    assert [e["event"] for e in first] == ["delivery_retry"]
    view = row(engine, row_id)
    assert (view.status, view.failing_since) == ("pending", started)

    warnings: list[str] = []
    while row(engine, row_id).status == "pending":
        warnings += [e["event"] for e in attempt_when_due() if e["event"] != "delivery_retry"]
        assert clock.now - started < timedelta(hours=2, minutes=6)
    view = row(engine, row_id)
    assert view.status == "dead"
    assert clock.now - started >= timedelta(hours=2)  # not a moment before the horizon
    assert (view.last_error or "").startswith("gave up after 2 h of transient failures")
    assert warnings == ["delivery_failing_long", "delivery_gave_up"]  # warned once, then gave up
    attempts = w.metrics.delivery_attempts if w.metrics else None
    assert attempts is not None
    assert attempts.labels("dead")._value.get() == 1

    with transaction(engine) as db:  # an operator's retry starts a fresh horizon
        outbox.requeue(db, row_id, now=clock.now)
    assert row(engine, row_id).failing_since is None


def test_the_ehrs_return_brings_waiting_deliveries_forward(engine: Engine) -> None:
    clock = Clock()
    waiting, fresh = queue(engine, "w", clock.now), queue(engine, "f", clock.now)
    later = clock.now + timedelta(minutes=5)
    with transaction(engine) as db:
        outbox.claim(db, waiting, now=clock.now, lease=timedelta(seconds=60))
        outbox.mark_retry(db, waiting, error="down", at=later, now=clock.now)
    w = worker(engine, clock, recovery_spread_seconds=2)
    health = EhrHealth()
    health.on_recovered(w.ehr_recovered)

    async def scenario() -> None:
        health.record(reached=False)
        health.record(reached=True)  # back: the worker is told
        await asyncio.gather(*w._background)

    asyncio.run(scenario())
    moved = row(engine, waiting).next_attempt_at.replace(tzinfo=UTC)
    assert clock.now <= moved <= clock.now + timedelta(seconds=2)
    assert row(engine, fresh).next_attempt_at.replace(tzinfo=UTC) == clock.now  # untouched


@respx.mock
def test_health_turns_up_on_any_answer_after_failures_and_tells_listeners_once() -> None:
    route = respx.get(f"{BASE}/metadata")
    route.side_effect = [
        httpx.ConnectError("down"),
        httpx.Response(503),
        httpx.Response(404),
        httpx.Response(200, json={"resourceType": "CapabilityStatement"}),
    ]
    health, told = EhrHealth(), []
    health.on_recovered(lambda: told.append(1))
    metrics = Metrics()

    async def scenario() -> None:
        async with EhrClient(BASE, health=health, metrics=metrics) as ehr:
            for _ in range(4):
                try:
                    await ehr.metadata()
                except Exception:  # noqa: S112 (the outcome is what health records)
                    continue

    asyncio.run(scenario())
    assert health.up is True
    assert told == [1]  # down -> up once (the 404 already counts as the EHR answering)
    errors = {k: metrics.ehr_errors.labels(k)._value.get() for k in ("unavailable", "server_error")}
    assert errors == {"unavailable": 1, "server_error": 1}
