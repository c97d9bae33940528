"""What this process knows of the EHR's reachability, from every call and from the probe.

A call that gets no answer (network failure, timeout) or a 5xx counts as *down*; any other
answer, a 4xx included, counts as *up* (the EHR is there and talking). When the state turns
from down to up, the ``on_recovered`` callbacks run: the delivery worker uses that to bring
forward the deliveries that are waiting on a backoff, so a backlog drains within seconds of
the EHR's return instead of when each delay happens to end.
"""

from __future__ import annotations

from collections.abc import Callable

from ..logging import get_logger

log = get_logger(__name__)


class EhrHealth:
    """Up/down of the EHR as calls see it; ``None`` until the first call."""

    def __init__(self) -> None:
        self.up: bool | None = None
        self._on_recovered: list[Callable[[], None]] = []

    def on_recovered(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (in the event loop, quickly) each time the EHR comes back."""
        self._on_recovered.append(callback)

    def record(self, *, reached: bool) -> None:
        was = self.up
        self.up = reached
        if reached and was is False:
            log.info("ehr_recovered")
            for callback in self._on_recovered:
                try:
                    callback()
                except Exception as exc:  # a listener's defect must not fail the EHR call
                    log.error("ehr_recovered_callback_failed", error=type(exc).__name__)
        elif not reached and was is not False:
            log.warning("ehr_down")
