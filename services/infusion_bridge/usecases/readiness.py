"""Is the service ready to work: does the database answer, does the EHR answer ``/metadata``?"""

from __future__ import annotations

from typing import Any

from anyio.to_thread import run_sync

from ..ehr.errors import EhrError
from ..runtime import Runtime
from ..store.db import ping


async def readiness(rt: Runtime) -> dict[str, dict[str, Any]]:
    """One check per dependency: ``{"status": "ok"}`` or ``{"status": "down", "reason": ...}``."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        await run_sync(ping, rt.engine)
        checks["database"] = {"status": "ok"}
    except Exception as exc:  # any driver error means "not ready", never a 500
        checks["database"] = {"status": "down", "reason": type(exc).__name__}
    try:
        meta = await rt.ehr.metadata()
        checks["ehr"] = {"status": "ok", "fhirVersion": meta.get("fhirVersion")}
    except EhrError as exc:
        checks["ehr"] = {"status": "down", "reason": str(exc)}
    return checks
