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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


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
    client = httpx.Client(timeout=120)

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.command == "POST":
                gate.hold(body)
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            answer = client.request(
                self.command,
                upstream + self.path.removeprefix("/fhir"),
                content=body or None,
                headers=headers,
            )
            if self.command == "POST":
                gate.count_answer()
            try:
                self.send_response(answer.status_code)
                for key in ("Content-Type", "ETag", "Location", "Last-Modified"):
                    if key in answer.headers:
                        self.send_header(key, answer.headers[key])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)
            except OSError:  # the caller is gone (a killed service): the EHR still has it
                pass

        do_GET = do_POST = do_PUT = _forward

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir", gate
    finally:
        gate.open()
        server.shutdown()
        server.server_close()
        client.close()
