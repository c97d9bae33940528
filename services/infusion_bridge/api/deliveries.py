"""Write-back deliveries: list them, and send a dead one again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from ..clock import utcnow
from ..domain.errors import NotFound
from ..store import outbox
from ..store.db import session_scope, write_scope
from .sessions import DeliveryView
from .state import app_state

router = APIRouter(prefix="/deliveries", tags=["deliveries"])


@router.get("", response_model=list[DeliveryView])
async def read_deliveries(
    request: Request,
    status: Annotated[outbox.DeliveryStatus | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Deliveries, newest first, optionally only those in one status (e.g. ``dead``)."""
    engine = app_state(request).engine

    def load() -> list[DeliveryView]:
        with session_scope(engine) as session:
            rows = outbox.list_deliveries(
                session, status=status.value if status else None, offset=offset, limit=limit
            )
            return [DeliveryView.of(r) for r in rows]

    return await run_in_threadpool(load)


@router.post("/{delivery_id}/retry", status_code=202, response_model=DeliveryView)
async def retry_delivery(
    request: Request, delivery_id: Annotated[int, Path(ge=1, le=2**62)]
) -> Any:
    """Queue a dead (or waiting) delivery to be sent now."""
    state = app_state(request)

    def work() -> DeliveryView:
        with write_scope(state.engine) as session:
            row = outbox.requeue(session, delivery_id, now=utcnow())
            if row is None:
                raise NotFound(f"delivery {delivery_id} does not exist", "delivery_id")
            session.flush()
            return DeliveryView.of(row)

    view = await run_in_threadpool(work)
    if state.worker is not None:
        state.worker.notify()
    return view
