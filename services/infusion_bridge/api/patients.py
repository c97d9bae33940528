"""``GET /patients/{id}/infusions``: a patient's infusion history and next due dates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from ..domain.history import DrugHistory, patient_history
from ..domain.orders import InfusionOrder, patient_reference
from ..store.db import session_scope
from ..store.sessions import load
from ..store.tables import OrderRow, SessionRow
from .sessions import SessionSummary, summary
from .state import app_state

router = APIRouter(prefix="/patients", tags=["clinician"])


class InfusionHistory(BaseModel):
    patient: str
    sessions: list[SessionSummary]
    drugs: list[DrugHistory]


@router.get("/{patient_id}/infusions", response_model=InfusionHistory)
async def infusion_history(request: Request, patient_id: str) -> Any:
    """Every session of the patient (newest first), total dose per drug, the mitoxantrone
    cumulative dose in mg/m2, and the next due date per drug with the rule behind it."""
    state = app_state(request)
    patient = patient_reference(patient_id)

    def build() -> InfusionHistory:
        with session_scope(state.engine) as session:
            rows = session.exec(
                select(SessionRow)
                .where(SessionRow.patient == patient)
                .order_by(
                    col(SessionRow.started_at).desc().nulls_last(),
                    col(SessionRow.created_at).desc(),
                )
            ).all()
            order_ids = {r.order_id for r in rows}
            orders = {
                o.id: InfusionOrder.model_validate(o.order_json)
                for o in session.exec(select(OrderRow).where(col(OrderRow.id).in_(order_ids)))
            }
            pairs = [(load(r), orders[r.order_id]) for r in rows]
            return InfusionHistory(
                patient=patient,
                sessions=[summary(r) for r in rows],
                drugs=patient_history(pairs, state.catalog),
            )

    return await run_in_threadpool(build)
