"""The background EHR probe: ``GET /metadata`` every few seconds on a connection of its own.

Readiness reads the cached result (with its age) and never waits on the EHR. The probe has
its own client (one connection, a short timeout), so a hung EHR or a busy delivery pool
cannot hold it up, and a hard deadline on top of httpx's per-phase timeouts, so an EHR
trickling bytes cannot either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..logging import get_logger
from .client import EhrClient
from .errors import EhrError

log = get_logger(__name__)


@dataclass(frozen=True)
class ProbeResult:
    """One probe: did the EHR answer ``/metadata``; ``at``: when it started (monotonic)."""

    reached: bool
    at: float
    fhir_version: str | None = None
    reason: str | None = None


class EhrProbe:
    """Probes the EHR with ``client`` (its own) and keeps the latest result."""

    def __init__(
        self,
        client: EhrClient,
        *,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.clock = clock
        self.latest: ProbeResult | None = None

    def age(self) -> float | None:
        """Seconds since the latest result, None before the first."""
        return None if self.latest is None else max(0.0, self.clock() - self.latest.at)

    async def check(self) -> ProbeResult:
        """Probe once (at most ``timeout`` seconds) and remember the result, unless a probe
        that started later has already answered."""
        started = self.clock()
        try:
            async with asyncio.timeout(self.timeout):
                meta = await self.client.metadata()
            version = meta.get("fhirVersion")
            result = ProbeResult(True, started, fhir_version=str(version) if version else None)
        except TimeoutError:
            result = ProbeResult(False, started, reason=f"no answer in {self.timeout:g}s")
            if self.client.health is not None:
                self.client.health.record(reached=False)
        except EhrError as exc:
            result = ProbeResult(False, started, reason=str(exc))
        except Exception as exc:  # whatever breaks, the probe reports it and keeps going
            result = ProbeResult(False, started, reason=type(exc).__name__)
        if self.latest is None or self.latest.at <= started:
            self.latest = result
        return result

    async def run(self, interval: float) -> None:
        """Probe every ``interval`` seconds, forever."""
        while True:
            await self.check()
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        await self.client.aclose()
