"""``/patients/{id}``: a patient's infusion history and next due dates; pulling the patient's
history from the EHR on demand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from ..access import Access, guard, need
from ..read_models import EhrPullView, InfusionHistory
from ..usecases import ehr_history, records
from .deps import RuntimeDep

router = APIRouter(prefix="/patients", tags=["clinician"])
STAFF = ("nurse", "clinician")
Reading = Annotated[
    Access,
    Depends(guard(need("Session", "rs", roles=STAFF), interaction="search")),
]
Pulling = Annotated[
    Access,
    Depends(
        guard(
            need("Session", "rs", contexts=("patient", "user"), roles=STAFF),
            interaction="execute",
            resource_type="Patient",
        )
    ),
]
"""Refreshing the service's copy of what the EHR holds is a read of the patient's history:
it reveals nothing ``GET /patients/{id}/infusions`` does not show (it answers counts only),
changes no record here or at the EHR, and happens anyway when an order arrives. So the
staff who read that history (nurse or clinician, ``Session.rs``) may ask for it; a
``patient/`` launch only for its own patient. People only (no ``system/`` client): it makes
the service call the EHR."""


@router.get("/{patient_id}/infusions", response_model=InfusionHistory)
async def infusion_history(patient_id: str, rt: RuntimeDep, access: Reading) -> Any:
    """Every session of the patient (newest first), total dose per drug (charted here and
    read from the EHR), the mitoxantrone cumulative dose in mg/m2, and the next due date per
    drug with the rule and the doses behind it."""
    return await records.infusion_history(rt, patient_id, access.compartment)


@router.post("/{patient_id}/ehr-history", response_model=EhrPullView)
async def pull_ehr_history(patient_id: str, rt: RuntimeDep, access: Pulling) -> Any:
    """Read the patient's earlier administrations of catalog drugs, body measurements and
    name from the EHR now (503 if the EHR cannot answer)."""
    return await ehr_history.pull_patient_history(rt, patient_id, access.compartment)
