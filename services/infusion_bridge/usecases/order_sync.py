"""Pull sync: fetch changed orders from the EHR by ``_lastUpdated``, page by page.

Each page is written in one transaction together with the checkpoint (the newest
``meta.lastUpdated`` on it), so an interrupted run resumes where it stopped. The next run
searches ``_lastUpdated=ge<checkpoint>``: boundary orders come again and are no-ops
(same id + version).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from fhir_mappings.errors import MappingError

from .clock import utcnow
from .domain.catalog import DrugCatalog
from .ehr.client import EhrClient
from .intake import PreparedOrder, prepare_order, store_order
from .logging import get_logger
from .store.db import session_scope, write_scope
from .store.orders import get_checkpoint, set_checkpoint

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
        with session_scope(engine) as session:
            return get_checkpoint(session, CHECKPOINT)

    summary = SyncSummary(checkpoint=await run_in_threadpool(read_checkpoint))
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
        await run_in_threadpool(_apply_page, engine, catalog, page, summary)
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
            prepared.append(prepare_order(resource, catalog, medications=medications))
        except MappingError as exc:
            summary.rejected += 1
            log.warning(
                "sync_order_rejected",
                order_id=resource.get("id"),
                issues=[i.code for i in exc.issues],
                expressions=[e for i in exc.issues for e in i.expression],
            )
    with write_scope(engine) as session:
        now = utcnow()
        for item in prepared:
            summary.count(store_order(session, item, source="sync", now=now).outcome.value)
        if newest is not None:
            set_checkpoint(session, CHECKPOINT, newest[1], now=now)
    summary.pages += 1
    summary.received += len(matches)
    if newest is not None:
        summary.checkpoint = newest[1]
