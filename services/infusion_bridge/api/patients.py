"""``/patients/{id}``: a patient's infusion history and next due dates; pulling the patient's
history from the EHR on demand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..read_models import EhrPullView, InfusionHistory
from ..usecases import ehr_history, records
from .deps import RuntimeDep

router = APIRouter(prefix="/patients", tags=["clinician"])


@router.get("/{patient_id}/infusions", response_model=InfusionHistory)
async def infusion_history(patient_id: str, rt: RuntimeDep) -> Any:
    """Every session of the patient (newest first), total dose per drug (charted here and
    read from the EHR), the mitoxantrone cumulative dose in mg/m2, and the next due date per
    drug with the rule and the doses behind it."""
    return await records.infusion_history(rt, patient_id)


@router.post("/{patient_id}/ehr-history", response_model=EhrPullView)
async def pull_ehr_history(patient_id: str, rt: RuntimeDep) -> Any:
    """Read the patient's earlier administrations of catalog drugs, body measurements and
    name from the EHR now (503 if the EHR cannot answer)."""
    return await ehr_history.pull_patient_history(rt, patient_id)
