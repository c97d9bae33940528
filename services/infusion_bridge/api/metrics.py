"""``GET /metrics`` in the Prometheus text format.

Guarded like every other endpoint: a scraper's backend client with ``system/Metrics.r``
(client credentials; Prometheus sends its token as ``Authorization: Bearer``), or a
signed-in admin with ``user/Metrics.r``. The guard opens the request's audit record, as
for every guarded route; a scrape reads only aggregate figures, never a patient's data.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ..access import Access, guard, need
from ..metrics import CONTENT_TYPE
from ..usecases.metrics import scrape
from .deps import RuntimeDep

router = APIRouter(tags=["operations"])
SCRAPE = need("Metrics", "r", contexts=("system", "user"), roles=("admin",))
Scraping = Annotated[Access, Depends(guard(SCRAPE, interaction="read"))]


@router.get("/metrics", response_class=Response)
async def metrics(rt: RuntimeDep, _: Scraping) -> Response:
    """Request, EHR, delivery and sync metrics for Prometheus."""
    return Response(await scrape(rt), media_type=CONTENT_TYPE)
