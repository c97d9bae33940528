"""Write-back deliveries: list them, and send a dead one again (operators: role admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from ..access import Access, guard, need
from ..read_models import DeliveryView
from ..usecases import deliveries
from .deps import RuntimeDep

router = APIRouter(prefix="/deliveries", tags=["deliveries"])
ADMIN = need(None, roles=("admin",))
Listing = Annotated[Access, Depends(guard(ADMIN, interaction="search", resource_type="Delivery"))]
Retrying = Annotated[Access, Depends(guard(ADMIN, interaction="execute", resource_type="Delivery"))]


@router.get("", response_model=list[DeliveryView])
async def read_deliveries(
    rt: RuntimeDep,
    _: Listing,
    status: Annotated[deliveries.DeliveryStatus | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Deliveries, newest first, optionally only those in one status (e.g. ``dead``)."""
    return await deliveries.list_deliveries(rt, status=status, offset=offset, limit=limit)


@router.post("/{delivery_id}/retry", status_code=202, response_model=DeliveryView)
async def retry_delivery(
    delivery_id: Annotated[int, Path(ge=1, le=2**62)], rt: RuntimeDep, _: Retrying
) -> Any:
    """Queue a dead (or waiting) delivery to be sent now."""
    return await deliveries.retry_delivery(rt, delivery_id)
