"""When to try a delivery again, and when to stop. Pure: the caller passes the random source."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; ``Retry-After`` is a floor.

    Transient failures are retried for ``horizon`` from the first failure of a run, then the
    delivery is dead-lettered; past ``warn_after`` a failing delivery is reported (log line,
    metric). When the EHR comes back, waiting deliveries are brought forward to a random
    moment within ``recovery_spread_seconds``, so several workers do not all hit it at once.
    """

    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    horizon: timedelta = timedelta(hours=96)
    warn_after: timedelta = timedelta(minutes=15)
    recovery_spread_seconds: float = 2.0

    def delay(
        self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        jittered = (rng or random.Random()).uniform(ceiling / 2, ceiling)  # noqa: S311
        if retry_after is not None:
            return min(max(jittered, retry_after), max(self.cap_seconds, retry_after))
        return jittered

    def gives_up(self, failing_for: timedelta) -> bool:
        """Has a delivery failing for this long run out of retries?"""
        return failing_for >= self.horizon

    def failing_long(self, failing_for: timedelta) -> bool:
        """Should an operator hear about a delivery failing for this long?"""
        return failing_for >= self.warn_after

    def recovery_delay(self, rng: random.Random | None = None) -> float:
        """Seconds from the EHR's return to a waiting delivery's next attempt."""
        return (rng or random.Random()).uniform(0, self.recovery_spread_seconds)  # noqa: S311
