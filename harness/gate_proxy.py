"""An HTTP proxy in front of the EHR that holds every POST until the test opens it.

The write-back worker POSTs its transaction Bundles to the EHR's base; held here, they keep
their outbox rows leased ('delivering') for as long as the test likes: to pile up a backlog
that several workers then compete for, or to catch a worker holding a delivery before it
is killed. GETs (the readiness probe) pass at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from harness.fhir_proxy import fhir_proxy


class Gate:
    """What the proxy held and let through; ``open`` releases everything, now and later."""

    def __init__(self) -> None:
        self._opened = threading.Event()
        self._changed = threading.Condition()
        self.held: list[bytes] = []
        """Bodies of the POSTs that arrived while closed, in arrival order."""
        self.answered = 0
        """POSTs the upstream has answered."""

    def open(self) -> None:
        self._opened.set()

    def wait_held(self, count: int, timeout: float) -> bool:
        """Until at least ``count`` POSTs wait here; False if the time ran out first."""
        return self._wait(lambda: len(self.held) >= count, timeout)

    def wait_answered(self, count: int, timeout: float) -> bool:
        return self._wait(lambda: self.answered >= count, timeout)

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        with self._changed:
            return bool(self._changed.wait_for(done, timeout))

    def hold(self, body: bytes) -> None:
        """Called by the proxy: wait here while the gate is closed."""
        if not self._opened.is_set():
            with self._changed:
                self.held.append(body)
                self._changed.notify_all()
            self._opened.wait()

    def count_answer(self) -> None:
        with self._changed:
            self.answered += 1
            self._changed.notify_all()


@contextmanager
def gate_proxy(upstream: str) -> Iterator[tuple[str, Gate]]:
    """Yields (base URL ending in /fhir, its closed :class:`Gate`). Leaving opens the gate,
    so nothing stays blocked."""
    gate = Gate()

    def before(method: str, body: bytes) -> None:
        if method == "POST":
            gate.hold(body)

    def after(method: str, _body: bytes) -> None:
        if method == "POST":
            gate.count_answer()

    with fhir_proxy(upstream, before=before, after=after, timeout=120) as url:
        try:
            yield url, gate
        finally:
            gate.open()  # before the proxy closes: nothing stays blocked in it
