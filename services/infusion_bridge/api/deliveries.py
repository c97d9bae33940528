"""Write-back deliveries: list them, and send a dead one again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ..read_models import DeliveryView
from ..usecases import deliveries
from .deps import RuntimeDep

router = APIRouter(prefix="/deliveries", tags=["deliveries"])


@router.get("", response_model=list[DeliveryView])
async def read_deliveries(
    rt: RuntimeDep,
    status: Annotated[deliveries.DeliveryStatus | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Deliveries, newest first, optionally only those in one status (e.g. ``dead``)."""
    return await deliveries.list_deliveries(rt, status=status, offset=offset, limit=limit)


@router.post("/{delivery_id}/retry", status_code=202, response_model=DeliveryView)
async def retry_delivery(delivery_id: Annotated[int, Path(ge=1, le=2**62)], rt: RuntimeDep) -> Any:
    """Queue a dead (or waiting) delivery to be sent now."""
    return await deliveries.retry_delivery(rt, delivery_id)
