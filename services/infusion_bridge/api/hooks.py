"""The rest-hook Subscription endpoint: ``{endpoint} = <service>/hooks/ehr``.

With a payload, HAPI sends ``PUT {endpoint}/MedicationRequest/{id}`` (create and update)
and ``DELETE {endpoint}/MedicationRequest/{id}``; those are the same operations as the EHR's
own pushes and are routed in :mod:`.fhir_orders`. Without a payload, HAPI sends an empty
``POST {endpoint}``, on which the service pulls the changes itself (here). Each call
carries the EHR client's bearer token, or ``INFUSION_HOOK_SECRET`` in
``X-Infusion-Hook-Secret`` (for EHRs that can only send a fixed header).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends
from fastapi.responses import Response

from ..access import Access, guard, need, rest_hook_caller
from ..usecases.order_sync import run_sync_once
from .deps import RuntimeDep

router = APIRouter(
    prefix="/hooks/ehr", tags=["subscription"], dependencies=[Depends(rest_hook_caller)]
)
Notified = Annotated[
    Access,
    Depends(guard(need("MedicationRequest", "u", contexts=("system",)), interaction="execute")),
]


@router.post("", status_code=200)
async def hook_ping(background: BackgroundTasks, rt: RuntimeDep, _: Notified) -> Response:
    """A Subscription notification without payload: pull the changes from the EHR."""
    background.add_task(run_sync_once, rt)
    return Response(status_code=200)
