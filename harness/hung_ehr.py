"""An "EHR" that accepts every connection and never sends a byte (a hung upstream)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hung_ehr(backlog: int = 256) -> Iterator[str]:
    """Yields its base URL (ending in /fhir); every connection is held open, unanswered."""
    server = socket.create_server(("127.0.0.1", 0), backlog=backlog)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/fhir"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()
