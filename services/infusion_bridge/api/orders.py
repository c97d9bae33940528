"""JSON views of the order cache: ``GET /orders`` and ``GET /orders/{id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ..access import Access, guard, need
from ..read_models import OrderPage, OrderView
from ..usecases import orders
from .deps import RuntimeDep

router = APIRouter(prefix="/orders", tags=["orders"])
STAFF = ("nurse", "clinician")
Listing = Annotated[
    Access, Depends(guard(need("MedicationRequest", "rs", roles=STAFF), interaction="search"))
]
Reading = Annotated[
    Access, Depends(guard(need("MedicationRequest", "r", roles=STAFF), interaction="read"))
]


@router.get("", response_model=OrderPage)
async def read_orders(
    rt: RuntimeDep,
    access: Listing,
    patient: Annotated[str | None, Query(description="Patient reference, e.g. Patient/123")] = None,
    status: Annotated[str | None, Query(description="Order status, e.g. active")] = None,
    drug: Annotated[str | None, Query(description="Catalog key or RxNorm code")] = None,
    include_deleted: bool = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Cached orders, newest first."""
    filters = orders.OrderFilters(patient, status, drug, include_deleted, offset, limit)
    return await orders.list_orders(rt, filters, access.compartment)


@router.get("/{order_id}", response_model=OrderView)
async def read_order(order_id: str, rt: RuntimeDep, access: Reading) -> Any:
    """One cached order with its linked premedication (or infusion) orders."""
    return await orders.order_view(rt, order_id, access.compartment)
