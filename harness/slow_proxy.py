"""An HTTP proxy that forwards each request at once but holds the answer back.

Used to catch the service *between* the EHR committing a write and the service hearing
about it — the moment a crash is most dangerous for exactly-once delivery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from harness.fhir_proxy import fhir_proxy


@contextmanager
def slow_proxy(
    upstream: str, delay: float, hold: Callable[[bytes], bool] | None = None
) -> Iterator[tuple[str, threading.Event]]:
    """Yields (base URL ending in /fhir, an Event set once a held POST has reached upstream).

    Every POST is held ``delay`` seconds, or only those whose body ``hold`` picks."""
    forwarded = threading.Event()

    def after(method: str, body: bytes) -> None:
        if method == "POST" and (hold is None or hold(body)):
            forwarded.set()
            time.sleep(delay)

    with fhir_proxy(upstream, after=after) as url:
        yield url, forwarded
