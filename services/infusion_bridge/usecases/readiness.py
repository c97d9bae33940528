"""Is the service ready to work: does the database answer, does the EHR answer ``/metadata``?

Never waits on the EHR: its check is the background probe's latest result, with its age.
The database gets a short budget, so a stuck pool cannot hold the probe either.
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.to_thread import run_sync

from ..runtime import Runtime
from ..store.db import ping

DATABASE_BUDGET_SECONDS = 0.5


async def readiness(rt: Runtime) -> dict[str, dict[str, Any]]:
    """One check per dependency: ``{"status": "ok", ...}`` or ``{"status": "down",
    "reason": ...}``; the EHR's carries ``checkedSecondsAgo``."""
    return {"database": await _database(rt), "ehr": ehr_check(rt)}


async def _database(rt: Runtime) -> dict[str, Any]:
    try:
        with anyio.fail_after(DATABASE_BUDGET_SECONDS):
            await run_sync(ping, rt.engine, abandon_on_cancel=True)
    except TimeoutError:
        return {"status": "down", "reason": f"no answer in {DATABASE_BUDGET_SECONDS:g}s"}
    except Exception as exc:  # any driver error means "not ready", never a 500
        return {"status": "down", "reason": type(exc).__name__}
    return {"status": "ok"}


def ehr_check(rt: Runtime) -> dict[str, Any]:
    """The probe's latest result; stale (the probe itself stuck) counts as down."""
    probe = rt.probe
    age = probe.age() if probe is not None else None
    if probe is None or probe.latest is None or age is None:
        return {"status": "down", "reason": "not checked yet"}
    settings = rt.settings
    stale_after = 3 * settings.ehr_probe_interval_seconds + settings.ehr_probe_timeout_seconds
    ago = round(age, 1)
    if age > stale_after:
        return {"status": "down", "reason": "probe result is stale", "checkedSecondsAgo": ago}
    if not probe.latest.reached:
        return {"status": "down", "reason": probe.latest.reason, "checkedSecondsAgo": ago}
    return {"status": "ok", "fhirVersion": probe.latest.fhir_version, "checkedSecondsAgo": ago}
