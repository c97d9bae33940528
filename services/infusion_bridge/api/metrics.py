"""``GET /metrics`` in the Prometheus text format.

Its own router so that access control is attached in one place (a scrape scope once sign-in
lands, see issue #9), e.g. ``APIRouter(dependencies=[Depends(require_scope(...))])``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ..metrics import CONTENT_TYPE
from ..usecases.metrics import scrape
from .deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def metrics(rt: RuntimeDep) -> Response:
    """Request, EHR, delivery and sync metrics for Prometheus."""
    return Response(await scrape(rt), media_type=CONTENT_TYPE)
