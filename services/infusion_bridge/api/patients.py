"""``GET /patients/{id}/infusions``: a patient's infusion history and next due dates."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.orm import defer
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from ..domain.history import Dose, DrugHistory, patient_history, with_mg_per_m2
from ..domain.orders import Quantity, patient_reference
from ..store.db import session_scope
from ..store.outbox import statuses_by_session
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
                .options(defer(SessionRow.session_json))  # type: ignore[arg-type]
                .where(SessionRow.patient == patient)
                .order_by(
                    col(SessionRow.started_at).desc().nulls_last(),
                    col(SessionRow.created_at).desc(),
                )
            ).all()
            bsa = {
                o.id: o.order_json.get("body_surface_area_m2")
                for o in session.exec(
                    select(OrderRow).where(col(OrderRow.id).in_({r.order_id for r in rows}))
                )
            }
            statuses = statuses_by_session(session, [r.id for r in rows])
        sessions_per_drug: dict[str, int] = defaultdict(int)
        doses: dict[str, list[Dose]] = defaultdict(list)
        for r in rows:
            sessions_per_drug[r.drug_key] += 1
            if r.given_at is not None and r.dose_value is not None and r.dose_unit:
                dose = Dose(
                    session_id=r.id,
                    given_at=r.given_at,
                    dose=Quantity(value=r.dose_value, unit=r.dose_unit),
                )
                doses[r.drug_key].append(with_mg_per_m2(dose, bsa.get(r.order_id)))
        return InfusionHistory(
            patient=patient,
            sessions=[summary(r, statuses) for r in rows],
            drugs=patient_history(sessions_per_drug, doses, state.catalog),
        )

    return await run_in_threadpool(build)
