"""``api/fhir_io``: the HTTP dates it writes and the base URL it works out per request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from starlette.requests import Request

from services.infusion_bridge.api import fhir_io


def test_http_dates_are_what_the_standard_library_writes() -> None:
    start = datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)
    for hours in range(0, 24 * 800, 37):  # every weekday, month and hour, across a leap year
        when = start + timedelta(hours=hours, seconds=hours % 61)
        assert fhir_io.http_date(when) == format_datetime(when, usegmt=True)
        local = when.astimezone(timezone(timedelta(hours=-5)))
        assert fhir_io.http_date(local) == format_datetime(when, usegmt=True)
        assert fhir_io.http_date(when.replace(tzinfo=None)) == format_datetime(when, usegmt=True)


def _request(
    host: bytes | None,
    scheme: str = "http",
    root_path: str = "",
    server: object = ("10.0.0.5", 8000),
) -> Request:
    headers = [(b"host", host)] if host is not None else []
    return Request(
        {
            "type": "http",
            "scheme": scheme,
            "server": server,
            "path": "/fhir/MedicationRequest",
            "root_path": root_path,
            "query_string": b"",
            "headers": headers,
        }
    )


def test_the_base_url_follows_how_each_request_addresses_the_server() -> None:
    fhir_io._BASES.clear()
    cases = [
        (_request(b"ib.example:8443", "https"), "https://ib.example:8443/fhir"),
        (_request(b"ib.example:8443", "http"), "http://ib.example:8443/fhir"),
        (_request(b"other.example"), "http://other.example/fhir"),
        (_request(None), "http://10.0.0.5:8000/fhir"),
        (
            _request(None, server=["testserver", 80]),
            "http://testserver/fhir",
        ),  # a list: ASGI allows
        (_request(b"ib.example", root_path="/bridge"), "http://ib.example/bridge/fhir"),
    ]
    for _ in range(2):  # worked out, then remembered: the same either way
        for request, expected in cases:
            assert fhir_io.base_url(request) == expected
            assert fhir_io.base_url(request) == str(request.base_url).rstrip("/") + "/fhir"


def test_remembered_bases_are_bounded_whatever_hosts_clients_send() -> None:
    fhir_io._BASES.clear()
    for i in range(fhir_io.MAX_BASES * 3):
        host = f"h{i}.example".encode()
        assert fhir_io.base_url(_request(host)) == f"http://h{i}.example/fhir"
    assert 0 < len(fhir_io._BASES) <= fhir_io.MAX_BASES
    latest = ("http", ("10.0.0.5", 8000), "", f"h{i}.example".encode())
    assert fhir_io._BASES[latest] == f"http://h{i}.example/fhir"  # the latest are the ones kept
