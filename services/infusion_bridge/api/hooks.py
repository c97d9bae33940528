"""The rest-hook Subscription endpoint: ``{endpoint} = <service>/hooks/ehr``.

With a payload, HAPI sends ``PUT {endpoint}/MedicationRequest/{id}`` (create and update)
and ``DELETE {endpoint}/MedicationRequest/{id}``; without one, an empty ``POST {endpoint}``,
on which the service pulls the changes itself. When ``INFUSION_HOOK_SECRET`` is set, each
call must carry it in the ``X-Infusion-Hook-Secret`` header (put it in the Subscription's
``channel.header``).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import Response

from ..logging import get_logger
from ..scheduler import run_sync_once
from . import fhir_orders
from .errors import ApiError
from .state import app_state

log = get_logger(__name__)
SECRET_HEADER = "x-infusion-hook-secret"  # noqa: S105 (a header name)


def require_hook_secret(request: Request) -> None:
    secret = app_state(request).settings.hook_secret
    request.scope["infusion.source"] = "subscription"
    if secret is None:
        return
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise ApiError.one(401, "login", "missing or wrong X-Infusion-Hook-Secret header")


router = APIRouter(
    prefix="/hooks/ehr", tags=["subscription"], dependencies=[Depends(require_hook_secret)]
)


@router.put("/MedicationRequest/{order_id}")
async def hook_update(request: Request, order_id: str) -> Response:
    """A Subscription delivery with payload: create or update the cached order."""
    return await fhir_orders.update_order(request, order_id)


@router.delete("/MedicationRequest/{order_id}", status_code=204)
async def hook_delete(request: Request, order_id: str) -> Response:
    """A Subscription delete notification: record it."""
    return await fhir_orders.delete_order(request, order_id)


@router.post("", status_code=200)
async def hook_ping(request: Request, background: BackgroundTasks) -> Response:
    """A Subscription notification without payload: pull the changes from the EHR."""
    background.add_task(run_sync_once, app_state(request))
    return Response(status_code=200)
