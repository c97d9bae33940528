"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..usecases.readiness import readiness
from .deps import RuntimeDep

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "a dependency is not available"}})
async def ready(rt: RuntimeDep) -> JSONResponse:
    """Ready when the database answers and the EHR's FHIR base answers ``/metadata``."""
    checks = await readiness(rt)
    ok = all(c["status"] == "ok" for c in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
