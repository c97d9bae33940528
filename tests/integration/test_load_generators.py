"""The benchmarks' load generators (``hey``, ``ab``: Debian's, installed by ``make
system-deps``) run for real against a small local server, and their reports are read right:
answers, non-2xx answers and connection failures are counted, not mistaken for each other."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from bench.load_generators import GENERATORS, load
from harness.live_service import free_port
from harness.local_http import serving

COUNT = 40
CONCURRENCY = 4
SECRET = "eyJ-not-a-real-token"
_serial = itertools.count()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps hey's HTTP/1.1 connections open, as uvicorn does

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        signed_in = self.headers.get("Authorization", "").startswith("Bearer ")
        ok = self.path in ("/created", "/varying") and signed_in
        body = b'{"resourceType":"MedicationRequest"}' if ok else b"{}"
        if self.path == "/varying":  # answers of different lengths, as the service's are
            body = b'{"resourceType":"MedicationRequest","id":"%d"}' % next(_serial)
        self.send_response(201 if ok else 400)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        if self.request_version == "HTTP/1.0":  # as uvicorn does: ab's -k gets no keep-alive
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(_Handler) as base:
        yield base


@pytest.fixture
def body(tmp_path: Path) -> Path:
    path = tmp_path / "order.json"
    path.write_bytes(b'{"resourceType":"MedicationRequest","status":"active"}')
    return path


@pytest.mark.parametrize("generator", GENERATORS)
def test_answers_are_counted_with_their_latencies(generator: str, server: str, body: Path) -> None:
    figures = load(generator, f"{server}/created", body, COUNT, CONCURRENCY)

    assert figures["requests"] == COUNT
    assert figures["failed"] == figures["non_2xx"] == 0
    assert figures["rate"] > 0
    assert 0 <= figures["p50_ms"] <= figures["p100_ms"]
    assert "Bearer <token>" in figures["command"]
    assert "eyJ" not in figures["command"]  # the token itself is never shown


@pytest.mark.parametrize("generator", GENERATORS)
def test_answers_of_different_lengths_are_no_failures(
    generator: str, server: str, body: Path
) -> None:
    # ab calls an answer whose length differs from the first one's a failure ("Length")
    figures = load(generator, f"{server}/varying", body, COUNT, CONCURRENCY)

    assert figures["requests"] == COUNT
    assert figures["failed"] == figures["non_2xx"] == 0


@pytest.mark.parametrize("generator", GENERATORS)
def test_non_2xx_answers_are_counted(generator: str, server: str, body: Path) -> None:
    figures = load(generator, f"{server}/refused", body, COUNT, CONCURRENCY)

    assert figures["requests"] == COUNT
    assert figures["non_2xx"] == COUNT
    assert figures["failed"] == 0


@pytest.mark.parametrize("generator", GENERATORS)
def test_connection_failures_are_counted_not_timed(generator: str, body: Path) -> None:
    nobody = free_port()  # a port nobody listens on
    figures = load(generator, f"http://127.0.0.1:{nobody}/created", body, COUNT, CONCURRENCY)

    assert figures["failed"] >= COUNT
    assert figures["non_2xx"] == 0
    if generator == "hey":  # ab times its failed attempts too
        assert figures["requests"] == 0
        assert figures["p50_ms"] is figures["p99_ms"] is figures["p100_ms"] is None


def test_a_generator_that_stops_with_an_error_is_reported_without_the_token(
    server: str, body: Path
) -> None:
    with pytest.raises(RuntimeError) as raised:  # hey refuses fewer requests than workers
        load("hey", f"{server}/created", body, 2, CONCURRENCY, bearer=SECRET)

    assert "exited 1" in str(raised.value)
    assert "Bearer <token>" in str(raised.value)
    assert SECRET not in str(raised.value)
    assert raised.value.__suppress_context__  # the traceback does not show the command either


def test_an_unknown_generator_is_refused(body: Path) -> None:
    with pytest.raises(ValueError, match="unknown load generator 'wrk'"):
        load("wrk", "http://127.0.0.1:1/", body, COUNT, CONCURRENCY)
