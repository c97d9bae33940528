"""Background pull sync: on a timer, and when a payload-less Subscription pings us."""

from __future__ import annotations

import asyncio

from .api.state import AppState
from .ehr.errors import EhrError
from .logging import get_logger
from .sync import SyncSummary, sync_orders

log = get_logger(__name__)


async def run_sync_once(state: AppState) -> SyncSummary | None:
    """Sync now. If a run is in progress, ask it to go again once it ends (changes may
    have landed after its search started). EHR failures are logged, not raised."""
    if state.sync_lock.locked():
        state.sync_requested = True
        return None
    summary = None
    async with state.sync_lock:
        while True:
            state.sync_requested = False
            try:
                summary = await sync_orders(
                    state.ehr, state.engine, state.catalog, page_size=state.settings.sync_page_size
                )
            except EhrError as exc:
                log.warning("sync_failed", error=type(exc).__name__, retryable=exc.retryable)
            if not state.sync_requested:
                return summary


async def periodic_sync(state: AppState) -> None:
    interval = state.settings.sync_interval_seconds
    while True:
        await run_sync_once(state)
        await asyncio.sleep(interval)
