"""An HTTP proxy on loopback in front of a FHIR base, with hooks around each forward: what
the slow proxy and the gate proxy are built on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Hook = Callable[[str, bytes], None]
"""Called with the request's method and body."""
RELAYED_HEADERS = ("Content-Type", "ETag", "Location", "Last-Modified")


@contextmanager
def fhir_proxy(
    upstream: str, *, before: Hook | None = None, after: Hook | None = None, timeout: float = 60
) -> Iterator[str]:
    """Yields the proxy's base URL (ending in /fhir). Each GET, POST and PUT goes to
    ``upstream``: ``before`` runs first, ``after`` once upstream has answered and before the
    answer is relayed. A caller gone meanwhile (a killed service) is not an error."""
    client = httpx.Client(timeout=timeout)

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if before is not None:
                before(self.command, body)
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            answer = client.request(
                self.command,
                upstream + self.path.removeprefix("/fhir"),
                content=body or None,
                headers=headers,
            )
            if after is not None:
                after(self.command, body)
            try:
                self.send_response(answer.status_code)
                for key in RELAYED_HEADERS:
                    if key in answer.headers:
                        self.send_header(key, answer.headers[key])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)
            except OSError:  # the caller is gone: upstream has the request all the same
                pass

        do_GET = do_POST = do_PUT = _forward

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()
        client.close()
