"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..ehr.errors import EhrError
from ..store.db import ping
from .state import app_state

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up and serving requests."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "a dependency is not available"}})
async def ready(request: Request) -> JSONResponse:
    """Ready when the database answers and the EHR's FHIR base answers ``/metadata``."""
    state = app_state(request)
    checks: dict[str, dict[str, Any]] = {}
    try:
        await run_in_threadpool(ping, state.engine)
        checks["database"] = {"status": "ok"}
    except Exception as exc:  # any driver error means "not ready", never a 500
        checks["database"] = {"status": "down", "reason": type(exc).__name__}
    try:
        meta = await state.ehr.metadata()
        checks["ehr"] = {"status": "ok", "fhirVersion": meta.get("fhirVersion")}
    except EhrError as exc:
        checks["ehr"] = {"status": "down", "reason": str(exc)}
    ok = all(c["status"] == "ok" for c in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
