"""When to try a delivery again. Pure: the caller passes the random source."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; ``Retry-After`` is a floor."""

    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def delay(
        self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        jittered = (rng or random.Random()).uniform(ceiling / 2, ceiling)  # noqa: S311
        if retry_after is not None:
            return min(max(jittered, retry_after), max(self.cap_seconds, retry_after))
        return jittered
