"""The delivery worker: outbox rows -> transaction Bundles -> the EHR, exactly once.

Exactly once = at-least-once delivery from a durable outbox + idempotent writes at the
EHR (every entry is a conditional create on its business identifier). A worker that dies
mid-delivery leaves its row 'delivering' with a lease; when the lease runs out any worker
takes it again, and the conditional creates turn the repeat into a no-op.

The worker keeps ``concurrency`` deliveries in flight all the time: whenever one finishes
(or something is queued, or a retry falls due) it takes the next due ones, so one slow
Bundle never stops the others from starting. Deliveries of one patient go in order (the
store offers only the earliest unfinished one per patient). When the EHR comes back after
failures, deliveries waiting on a backoff are brought forward (:meth:`ehr_recovered`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from ..domain.catalog import DrugCatalog
from ..ehr.client import EhrClient
from ..ehr.errors import EhrError, EhrResponseError
from ..logging import exception_summary, get_logger
from ..metrics import Metrics
from ..store import outbox
from ..store.db import transaction, write_transaction
from ..store.infusion_sessions import get_infusion_session
from ..usecases.writeback import build_writeback
from .policy import RetryPolicy

log = get_logger(__name__)
Json = dict[str, Any]


class DeliveryWorker:
    def __init__(
        self,
        engine: Engine,
        ehr: EhrClient,
        catalog: DrugCatalog,
        *,
        identifier_system: str,
        policy: RetryPolicy | None = None,
        concurrency: int = 4,
        lease: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        self.ehr = ehr
        self.catalog = catalog
        self.identifier_system = identifier_system
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.lease = lease
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311  (jitter, not security)
        self.metrics = metrics
        self._wakeup = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._warned: set[int] = set()
        self._background: set[asyncio.Task[Any]] = set()

    def notify(self) -> None:
        """Something became due: skip the rest of the idle wait."""
        self._wakeup.set()

    def ehr_recovered(self) -> None:
        """The EHR answers again after failures (called from the event loop): bring the
        deliveries waiting on a backoff forward."""
        task = asyncio.get_running_loop().create_task(self.bring_forward())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def bring_forward(self) -> int:
        """Move every delivery waiting on a backoff to within ``recovery_spread_seconds``
        from now (jittered), and wake the worker; returns how many were moved."""

        def work() -> int:
            with write_transaction(self.engine) as db:
                now = self.clock()
                waiting = outbox.waiting_on_backoff(db, now=now)
                when = {
                    row_id: now + timedelta(seconds=self.policy.recovery_delay(self.rng))
                    for row_id in waiting
                }
                outbox.reschedule(db, when, now=now)
                return len(when)

        try:
            moved = await run_in_threadpool(work)
        except Exception as exc:  # the regular backoff still applies
            log.error("delivery_bring_forward_failed", **exception_summary(exc))
            return 0
        if moved:
            log.info("delivery_brought_forward", deliveries=moved)
        self.notify()
        return moved

    async def run(self, poll_seconds: float) -> None:
        """Deliver forever: keep the lanes full; when idle, wait for a notify, a finished
        delivery, the next retry falling due, or the poll interval."""
        try:
            while True:
                self._wakeup.clear()
                try:
                    wait = await self._fill(poll_seconds)
                except Exception as exc:  # keep the worker alive; the rows stay in the outbox
                    log.error("delivery_loop_error", **exception_summary(exc))
                    wait = poll_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
        finally:
            for task in [*self._in_flight.values(), *self._background]:
                task.cancel()
            for task in [*self._in_flight.values(), *self._background]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def run_once(self) -> int:
        """Deliver everything due now (each delivery once, lanes refilling as they free
        up) and return how many were tried. For tests and one-shot use."""
        seen: set[int] = set()
        while True:
            started, _ = await self._start_due(self.concurrency - len(self._in_flight), seen)
            seen.update(started)
            if not self._in_flight:
                return len(seen)
            await asyncio.wait(list(self._in_flight.values()), return_when=asyncio.FIRST_COMPLETED)

    async def _fill(self, poll_seconds: float) -> float:
        """Start due deliveries in the free lanes; returns how long to idle at most."""
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return poll_seconds  # a finishing delivery wakes us
        started, next_due = await self._start_due(free, ())
        if len(started) == free:
            return 0.0  # lanes full: look again at once (more may be due)
        if next_due is None:
            return poll_seconds
        return max(0.0, min(poll_seconds, (next_due - self.clock()).total_seconds()))

    async def _start_due(
        self, free: int, exclude: Collection[int]
    ) -> tuple[list[int], datetime | None]:
        """Start up to ``free`` due deliveries; also returns when the next retry falls due."""
        skip = set(self._in_flight) | set(exclude)

        def due() -> tuple[list[int], datetime | None]:
            with transaction(self.engine) as db:
                now = self.clock()
                ids = outbox.due_ids(db, now=now, limit=free, exclude=skip) if free > 0 else []
                return ids, outbox.next_due_at(db, now=now)

        ids, upcoming = await run_in_threadpool(due)
        for row_id in ids:
            task = asyncio.create_task(self._deliver_logged(row_id))
            self._in_flight[row_id] = task
            task.add_done_callback(functools.partial(self._finished, row_id))
        return ids, _aware(upcoming)

    def _finished(self, row_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(row_id, None)
        self._wakeup.set()  # a lane is free, and this patient's next delivery may be due

    async def _deliver_logged(self, row_id: int) -> None:
        try:
            await self.deliver(row_id)
        except Exception as exc:  # the row keeps its lease and is taken again after it
            log.error("delivery_error", delivery=row_id, **exception_summary(exc))

    async def deliver(self, row_id: int) -> None:
        claimed = await run_in_threadpool(self._claim_and_build, row_id)
        if claimed is None:
            return
        claim, bundle = claimed
        if bundle is None:
            return
        try:
            response = await self.ehr.transaction(bundle)
        except EhrError as exc:
            await run_in_threadpool(self._failed, claim, exc)
            return
        summary = {
            "entries": [
                {k: v for k, v in (e.get("response") or {}).items() if k in ("status", "location")}
                for e in response.get("entry") or []
            ]
        }

        def done() -> None:
            with write_transaction(self.engine) as db:
                outbox.mark_delivered(db, row_id, response=summary, now=self.clock())

        await run_in_threadpool(done)
        self._warned.discard(row_id)
        self._count("delivered")
        log.info(
            "delivered", delivery=row_id, attempt=claim.attempts, entries=len(summary["entries"])
        )

    def _claim_and_build(self, row_id: int) -> tuple[outbox.Claim, Json | None] | None:
        with write_transaction(self.engine) as db:
            claim = outbox.claim(db, row_id, now=self.clock(), lease=self.lease)
            if claim is None:
                return None
            if claim.payload is not None:
                return claim, claim.payload
            try:  # rows queued without a payload: build it now
                found = get_infusion_session(db, claim.session_id)
                if found is None or found.infusion is None:
                    raise LookupError(f"session {claim.session_id} is gone")
                bundle = build_writeback(
                    db,
                    found.infusion,
                    catalog=self.catalog,
                    identifier_system=self.identifier_system,
                )
            except Exception as exc:  # a mapping defect: retrying cannot help
                outbox.mark_dead(
                    db,
                    row_id,
                    error=f"cannot build the Bundle: {exc}",
                    outcome=None,
                    now=self.clock(),
                )
                log.error("delivery_unbuildable", delivery=row_id, error=type(exc).__name__)
                self._count("dead")
                return claim, None
            return claim, bundle

    def _failed(self, claim: outbox.Claim, exc: EhrError) -> None:
        now = self.clock()
        row_id, attempt = claim.id, claim.attempts
        failing_for = now - (_aware(claim.failing_since) or now)
        with write_transaction(self.engine) as db:
            if exc.retryable and self.policy.gives_up(failing_for):
                hours = self.policy.horizon.total_seconds() / 3600
                outbox.mark_dead(
                    db,
                    row_id,
                    error=f"gave up after {hours:g} h of transient failures; last: {exc}",
                    outcome=None,
                    now=now,
                )
                log.error(
                    "delivery_gave_up",
                    delivery=row_id,
                    attempt=attempt,
                    failing_s=round(failing_for.total_seconds()),
                )
                self._count("dead")
            elif exc.retryable:
                wait = self.policy.delay(attempt, retry_after=exc.retry_after, rng=self.rng)
                outbox.mark_retry(
                    db, row_id, error=str(exc), at=now + timedelta(seconds=wait), now=now
                )
                log.warning(
                    "delivery_retry", delivery=row_id, attempt=attempt, wait_s=round(wait, 1)
                )
                if self.policy.failing_long(failing_for) and row_id not in self._warned:
                    self._warned.add(row_id)
                    log.warning(
                        "delivery_failing_long",
                        delivery=row_id,
                        attempt=attempt,
                        failing_s=round(failing_for.total_seconds()),
                    )
                self._count("retry")
            else:
                outcome = exc.outcome if isinstance(exc, EhrResponseError) else None
                outbox.mark_dead(db, row_id, error=str(exc), outcome=outcome, now=now)
                log.error("delivery_dead", delivery=row_id, attempt=attempt)
                self._count("dead")
        if not exc.retryable or self.policy.gives_up(failing_for):
            self._warned.discard(row_id)

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.delivery_attempts.labels(result).inc()


def _aware(when: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their (UTC) offset."""
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)
