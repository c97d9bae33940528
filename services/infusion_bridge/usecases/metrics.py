"""The ``/metrics`` scrape: the store's backlog figures at this moment, then every metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from anyio.to_thread import run_sync

from ..clock import utcnow
from ..read_models import OutboxStats
from ..runtime import Runtime
from ..store import outbox
from ..store.db import transaction
from ..store.sync_checkpoints import get_checkpoint
from .order_sync import CHECKPOINT


async def scrape(rt: Runtime) -> bytes:
    """Prometheus text format: request, EHR and delivery metrics, backlog, sync lag."""
    now = utcnow()
    warn_after = timedelta(seconds=rt.settings.delivery_warn_after_seconds)

    def load() -> tuple[OutboxStats, str | None]:
        with transaction(rt.engine) as db:
            return outbox.stats(db, failing_before=now - warn_after), get_checkpoint(db, CHECKPOINT)

    stats, checkpoint = await run_sync(load)
    oldest = _utc(stats.oldest_waiting_since)
    synced_to = _parse_instant(checkpoint)
    rt.metrics.set_backlog(
        stats.counts,
        oldest_pending_age=(now - oldest).total_seconds() if oldest else 0.0,
        failing_long=stats.failing_long,
        sync_lag=(now - synced_to).total_seconds() if synced_to else None,
    )
    if rt.probe is not None:
        latest, age = rt.probe.latest, rt.probe.age()
        rt.metrics.ehr_up.set(1 if latest is not None and latest.reached else 0)
        rt.metrics.ehr_probe_age.set(age if age is not None else float("nan"))
    return rt.metrics.render()


def _utc(when: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their (UTC) offset."""
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


def _parse_instant(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None
