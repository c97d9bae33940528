"""Write-backs to the EHR as operators see them: list them, send a dead one again."""

from __future__ import annotations

from anyio.to_thread import run_sync

from ..clock import utcnow
from ..domain.errors import NotFound
from ..read_models import DeliveryView
from ..runtime import Runtime
from ..store import audit, outbox
from ..store.db import transaction, write_transaction

DeliveryStatus = outbox.DeliveryStatus


async def list_deliveries(
    rt: Runtime, *, status: DeliveryStatus | None, offset: int, limit: int
) -> list[DeliveryView]:
    """Deliveries, newest first, optionally only those in one status."""

    def load() -> list[DeliveryView]:
        with transaction(rt.engine) as db:
            return outbox.list_deliveries(
                db, status=status.value if status else None, offset=offset, limit=limit
            )

    return await run_sync(load)


async def retry_delivery(rt: Runtime, delivery_id: int) -> DeliveryView:
    """Queue a dead (or waiting) delivery to be sent now, and wake the worker."""

    def work() -> DeliveryView | None:
        with write_transaction(rt.engine) as db:
            audit.note("Delivery", str(delivery_id), None)
            return outbox.requeue(db, delivery_id, now=utcnow())

    view = await run_sync(work)
    if view is None:
        raise NotFound(f"delivery {delivery_id} does not exist", "delivery_id")
    rt.wake_delivery()
    return view
