"""Pull sync: fetch changed orders from the EHR by ``_lastUpdated``, page by page; and when
to run it (on a timer, and when a payload-less Subscription pings us).

Each page is written in one transaction together with the checkpoint (the newest
``meta.lastUpdated`` on it), so an interrupted run resumes where it stopped. The next run
searches ``_lastUpdated=ge<checkpoint>``: boundary orders come again and are no-ops
(same id + version).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from anyio.to_thread import run_sync
from sqlalchemy.engine import Engine

from fhir_mappings.errors import MappingError

from ..clock import utcnow
from ..domain.catalog import DrugCatalog
from ..ehr.client import EhrClient
from ..ehr.errors import EhrError
from ..logging import get_logger
from ..runtime import Runtime
from ..store.db import transaction, write_transaction
from ..store.sync_checkpoints import get_checkpoint, set_checkpoint
from .order_intake import PreparedOrder, claim_orders, prepare_order, store_order

log = get_logger(__name__)
CHECKPOINT = "MedicationRequest"
Json = dict[str, Any]


@dataclass
class SyncSummary:
    pages: int = 0
    received: int = 0
    total: int | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    checkpoint: str | None = None

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


ProgressCallback = Callable[[SyncSummary], None]


async def sync_orders(
    ehr: EhrClient,
    engine: Engine,
    catalog: DrugCatalog,
    *,
    page_size: int = 100,
    max_pages: int | None = None,
    on_page: ProgressCallback | None = None,
) -> SyncSummary:
    """Pull every MedicationRequest changed since the checkpoint into the cache."""

    def read_checkpoint() -> str | None:
        with transaction(engine) as db:
            return get_checkpoint(db, CHECKPOINT)

    summary = SyncSummary(checkpoint=await run_sync(read_checkpoint))
    params = {
        "_sort": "_lastUpdated",
        "_count": str(page_size),
        "_include": "MedicationRequest:medication",
        "_total": "accurate",
    }
    if summary.checkpoint:
        params["_lastUpdated"] = f"ge{summary.checkpoint}"
    log.info("sync_started", checkpoint=summary.checkpoint, page_size=page_size)
    async for page in ehr.search_pages("MedicationRequest", params):
        if summary.total is None and isinstance(page.get("total"), int):
            summary.total = page["total"]
        await run_sync(_apply_page, engine, catalog, page, summary)
        if on_page:
            on_page(summary)
        if max_pages is not None and summary.pages >= max_pages:
            break
    log.info(
        "sync_finished",
        pages=summary.pages,
        received=summary.received,
        rejected=summary.rejected,
        checkpoint=summary.checkpoint,
        **summary.outcomes,
    )
    return summary


def _last_updated(resource: Json) -> tuple[datetime, str] | None:
    """``meta.lastUpdated`` parsed (an instant always has an offset), or None if unusable."""
    meta = resource.get("meta")
    stamp = meta.get("lastUpdated") if isinstance(meta, dict) else None
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when, stamp) if when.tzinfo is not None else None


def _apply_page(engine: Engine, catalog: DrugCatalog, page: Json, summary: SyncSummary) -> None:
    matches: list[Json] = []
    medications: dict[str, Json] = {}
    for entry in page.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue  # an EHR's odd entry must not stop the sync
        if resource.get("resourceType") == "MedicationRequest":
            matches.append(resource)
        elif resource.get("resourceType") == "Medication" and resource.get("id"):
            medications[f"Medication/{resource['id']}"] = resource
            if entry.get("fullUrl"):
                medications[entry["fullUrl"]] = resource
    prepared: list[PreparedOrder] = []
    newest: tuple[datetime, str] | None = None
    for resource in matches:
        when = _last_updated(resource)
        if when is not None and (newest is None or when[0] > newest[0]):
            newest = when
        try:
            prepared.append(
                prepare_order(resource, catalog, medications=medications, ehr_sourced=True)
            )
        except MappingError as exc:
            summary.rejected += 1
            log.warning(
                "sync_order_rejected",
                order_id=resource.get("id"),
                issues=[i.code for i in exc.issues],
                expressions=[e for i in exc.issues for e in i.expression],
            )
    with write_transaction(engine) as db:
        claim_orders(db, prepared)
        now = utcnow()
        for item in prepared:
            summary.count(store_order(db, item, source="sync", now=now).outcome.value)
        if newest is not None:
            set_checkpoint(db, CHECKPOINT, newest[1], now=now)
    summary.pages += 1
    summary.received += len(matches)
    if newest is not None:
        summary.checkpoint = newest[1]


async def run_sync_once(rt: Runtime) -> SyncSummary | None:
    """Sync now. If a run is in progress, ask it to go again once it ends (changes may
    have landed after its search started). EHR failures are logged, not raised."""
    if rt.sync_lock.locked():
        rt.sync_requested = True
        return None
    summary = None
    async with rt.sync_lock:
        while True:
            rt.sync_requested = False
            try:
                summary = await sync_orders(
                    rt.ehr, rt.engine, rt.catalog, page_size=rt.settings.sync_page_size
                )
                rt.metrics.sync_last_success.set_to_current_time()
            except EhrError as exc:
                log.warning("sync_failed", error=type(exc).__name__, retryable=exc.retryable)
            if not rt.sync_requested:
                return summary


async def periodic_sync(rt: Runtime) -> None:
    """Sync every ``sync_interval_seconds``, forever."""
    interval = rt.settings.sync_interval_seconds
    while True:
        await run_sync_once(rt)
        await asyncio.sleep(interval)
