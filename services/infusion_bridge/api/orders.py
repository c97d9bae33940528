"""JSON views of the order cache: ``GET /orders`` and ``GET /orders/{id}``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..domain.orders import Drug, InfusionOrder, Quantity, Rate, Schedule, patient_reference
from ..store.db import session_scope
from ..store.orders import get_order, linked_orders, list_orders
from ..store.tables import OrderRow
from .errors import ApiError
from .state import app_state

router = APIRouter(prefix="/orders", tags=["orders"])


class LinkedOrder(BaseModel):
    id: str
    role: str
    drug: str
    status: str


class OrderView(BaseModel):
    id: str
    version: int
    last_updated: datetime
    received_at: datetime
    source: str
    deleted: bool
    status: str
    intent: str
    role: str
    patient: str
    drug: Drug
    dose: Quantity
    body_surface_area_m2: float | None
    route: str | None
    rate: Rate | None
    schedule: Schedule | None
    dosage_text: str | None
    requester: str | None
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    group_identifier: str | None
    based_on: tuple[str, ...]
    linked_orders: list[LinkedOrder] = []


class OrderPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[OrderView]


def to_view(row: OrderRow, linked: list[OrderRow] | None = None) -> OrderView:
    order = InfusionOrder.model_validate(row.order_json)
    return OrderView(
        id=row.id,
        version=row.version_id,
        last_updated=row.last_updated,
        received_at=row.received_at,
        source=row.source,
        deleted=row.deleted,
        status=row.status,
        intent=order.intent.value,
        role=order.role,
        patient=order.patient,
        drug=order.drug,
        dose=order.dose,
        body_surface_area_m2=order.body_surface_area_m2,
        route=order.route_display or order.route_code,
        rate=order.rate,
        schedule=order.schedule,
        dosage_text=order.dosage_text,
        requester=order.requester,
        reasons=order.reasons,
        notes=order.notes,
        group_identifier=row.group_value,
        based_on=order.based_on,
        linked_orders=[
            LinkedOrder(
                id=o.id,
                role=o.role,
                drug=str(o.order_json["drug"]["name"]),
                status=o.status,
            )
            for o in linked or []
        ],
    )


@router.get("", response_model=OrderPage)
async def read_orders(
    request: Request,
    patient: Annotated[str | None, Query(description="Patient reference, e.g. Patient/123")] = None,
    status: Annotated[str | None, Query(description="Order status, e.g. active")] = None,
    drug: Annotated[str | None, Query(description="Catalog key or RxNorm code")] = None,
    include_deleted: bool = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Cached orders, newest first."""
    state = app_state(request)
    patient = patient_reference(patient) if patient else None

    def load() -> OrderPage:
        with session_scope(state.engine) as session:
            total, rows = list_orders(
                session,
                patient=patient,
                status=status,
                drug=drug,
                include_deleted=include_deleted,
                offset=offset,
                limit=limit,
            )
            return OrderPage(
                total=total, offset=offset, limit=limit, items=[to_view(r) for r in rows]
            )

    return await run_in_threadpool(load)


@router.get("/{order_id}", response_model=OrderView)
async def read_order(request: Request, order_id: str) -> Any:
    """One cached order with its linked premedication (or infusion) orders."""
    state = app_state(request)

    def load() -> OrderView | None:
        with session_scope(state.engine) as session:
            row = get_order(session, order_id)
            if row is None:
                return None
            return to_view(row, list(linked_orders(session, row)))

    view = await run_in_threadpool(load)
    if view is None:
        raise ApiError.one(404, "not-found", f"order {order_id} is not in the cache")
    return view
