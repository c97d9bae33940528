"""An HTTP proxy that forwards each request at once but holds the answer back.

Used to catch the service *between* the EHR committing a write and the service hearing
about it — the moment a crash is most dangerous for exactly-once delivery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@contextmanager
def slow_proxy(
    upstream: str, delay: float, hold: Callable[[bytes], bool] | None = None
) -> Iterator[tuple[str, threading.Event]]:
    """Yields (base URL ending in /fhir, an Event set once a held POST has reached upstream).

    Every POST is held ``delay`` seconds, or only those whose body ``hold`` picks."""
    forwarded = threading.Event()
    client = httpx.Client(timeout=60)

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            path = self.path.removeprefix("/fhir")
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            upstream_response = client.request(
                self.command, upstream + path, content=body, headers=headers
            )
            if self.command == "POST" and (hold is None or hold(body or b"")):
                forwarded.set()
                time.sleep(delay)
            self.send_response(upstream_response.status_code)
            for key in ("Content-Type", "ETag", "Location"):
                if key in upstream_response.headers:
                    self.send_header(key, upstream_response.headers[key])
            self.send_header("Content-Length", str(len(upstream_response.content)))
            self.end_headers()
            self.wfile.write(upstream_response.content)

        do_GET = do_POST = do_PUT = _forward

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir", forwarded
    finally:
        server.shutdown()
        server.server_close()
        client.close()
