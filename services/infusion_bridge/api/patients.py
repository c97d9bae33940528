"""``GET /patients/{id}/infusions``: a patient's infusion history and next due dates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from ..access import Access, guard, need
from ..read_models import InfusionHistory
from ..usecases import records
from .deps import RuntimeDep

router = APIRouter(prefix="/patients", tags=["clinician"])
Reading = Annotated[
    Access,
    Depends(guard(need("Session", "rs", roles=("nurse", "clinician")), interaction="search")),
]


@router.get("/{patient_id}/infusions", response_model=InfusionHistory)
async def infusion_history(patient_id: str, rt: RuntimeDep, access: Reading) -> Any:
    """Every session of the patient (newest first), total dose per drug, the mitoxantrone
    cumulative dose in mg/m2, and the next due date per drug with the rule behind it."""
    return await records.infusion_history(rt, patient_id, access.compartment)
