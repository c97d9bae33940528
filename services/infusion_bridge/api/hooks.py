"""The rest-hook Subscription endpoint: ``{endpoint} = <service>/hooks/ehr``.

With a payload, HAPI sends ``PUT {endpoint}/MedicationRequest/{id}`` (create and update)
and ``DELETE {endpoint}/MedicationRequest/{id}``; those are the same operations as the EHR's
own pushes and are routed in :mod:`.fhir_orders`. Without a payload, HAPI sends an empty
``POST {endpoint}``, on which the service pulls the changes itself (here). When
``INFUSION_HOOK_SECRET`` is set, each call must carry it in ``X-Infusion-Hook-Secret``.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends
from fastapi.responses import Response

from ..usecases.order_sync import run_sync_once
from .deps import RuntimeDep, require_hook_secret

router = APIRouter(
    prefix="/hooks/ehr", tags=["subscription"], dependencies=[Depends(require_hook_secret)]
)


@router.post("", status_code=200)
async def hook_ping(background: BackgroundTasks, rt: RuntimeDep) -> Response:
    """A Subscription notification without payload: pull the changes from the EHR."""
    background.add_task(run_sync_once, rt)
    return Response(status_code=200)
