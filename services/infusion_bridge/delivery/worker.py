"""The delivery worker: outbox rows -> transaction Bundles -> the EHR, exactly once.

Exactly once = at-least-once delivery from a durable outbox + idempotent writes at the
EHR (every entry is a conditional create on its business identifier). A worker that dies
mid-delivery leaves its row 'delivering' with a lease; when the lease runs out any worker
takes it again, and the conditional creates turn the repeat into a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from ..domain.catalog import DrugCatalog
from ..ehr.client import EhrClient
from ..ehr.errors import EhrError, EhrResponseError
from ..logging import get_logger
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
        self._wakeup = asyncio.Event()

    def notify(self) -> None:
        """Something became due: skip the rest of the idle wait."""
        self._wakeup.set()

    async def run(self, poll_seconds: float) -> None:
        """Deliver forever: whatever is due, then wait for a notify or the poll interval."""
        while True:
            self._wakeup.clear()
            try:
                processed = await self.run_once()
            except Exception as exc:  # keep the worker alive; the rows stay in the outbox
                log.error("delivery_loop_error", error=type(exc).__name__)
                processed = 0
            if processed == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), poll_seconds)

    async def run_once(self) -> int:
        """Deliver everything due now, keeping ``concurrency`` Bundles in flight the whole
        time (lanes refill from the outbox as they free up); returns how many were tried."""
        queue: list[int] = []
        seen: set[int] = set()
        refill = asyncio.Lock()
        exhausted = False

        def due() -> list[int]:
            with transaction(self.engine) as db:
                return outbox.due_ids(db, now=self.clock(), limit=self.concurrency * 8)

        async def next_id() -> int | None:
            nonlocal exhausted
            async with refill:
                if not queue and not exhausted:
                    fresh = [i for i in await run_in_threadpool(due) if i not in seen]
                    exhausted = not fresh
                    queue.extend(fresh)
                    seen.update(fresh)
                return queue.pop(0) if queue else None

        async def lane() -> None:
            while (row_id := await next_id()) is not None:
                await self.deliver(row_id)

        await asyncio.gather(*(lane() for _ in range(self.concurrency)))
        return len(seen)

    async def deliver(self, row_id: int) -> None:
        claimed = await run_in_threadpool(self._claim_and_build, row_id)
        if claimed is None:
            return
        attempt, bundle = claimed
        if bundle is None:
            return
        try:
            response = await self.ehr.transaction(bundle)
        except EhrError as exc:
            await run_in_threadpool(self._failed, row_id, attempt, exc)
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
        log.info("delivered", delivery=row_id, attempt=attempt, entries=len(summary["entries"]))

    def _claim_and_build(self, row_id: int) -> tuple[int, Json | None] | None:
        with write_transaction(self.engine) as db:
            claim = outbox.claim(db, row_id, now=self.clock(), lease=self.lease)
            if claim is None:
                return None
            if claim.payload is not None:
                return claim.attempts, claim.payload
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
                return claim.attempts, None
            return claim.attempts, bundle

    def _failed(self, row_id: int, attempt: int, exc: EhrError) -> None:
        now = self.clock()
        with write_transaction(self.engine) as db:
            if exc.retryable:
                wait = self.policy.delay(attempt, retry_after=exc.retry_after, rng=self.rng)
                outbox.mark_retry(
                    db, row_id, error=str(exc), at=now + timedelta(seconds=wait), now=now
                )
                log.warning(
                    "delivery_retry", delivery=row_id, attempt=attempt, wait_s=round(wait, 1)
                )
            else:
                outcome = exc.outcome if isinstance(exc, EhrResponseError) else None
                outbox.mark_dead(db, row_id, error=str(exc), outcome=outcome, now=now)
                log.error("delivery_dead", delivery=row_id, attempt=attempt)
