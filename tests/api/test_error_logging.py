"""Unhandled errors are logged as type + traceback frames: never the message, which for a
database error carries PostgreSQL's DETAIL (key values) and the bound parameters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "ord-secret-4711"

SCRIPT = """
import sys, threading, time
import httpx, uvicorn
from sqlalchemy.exc import IntegrityError
from harness.live_service import free_port
from services.infusion_bridge.app import create_app
from services.infusion_bridge.logging import configure_logging
from services.infusion_bridge.settings import Settings

configure_logging("INFO", "json")
app = create_app(Settings(
    database_url=sys.argv[1], ehr_base_url="http://ehr.test/fhir",
    sync_interval_seconds=0, delivery_enabled=False,
))

@app.get("/boom")
def boom() -> None:
    try:
        raise ValueError('duplicate key value violates unique constraint "orders_pkey"\\n'
                         'DETAIL:  Key (id)=(__SECRET__) already exists.')
    except ValueError as exc:
        raise IntegrityError("INSERT INTO orders (id) VALUES (%(id)s)", {"id": "__SECRET__"}, exc)

port = free_port()
server = uvicorn.Server(uvicorn.Config(app, port=port, log_config=None, access_log=False))
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
while not server.started:
    time.sleep(0.05)
print(httpx.get(f"http://127.0.0.1:{port}/boom").status_code)
server.should_exit = True
thread.join(timeout=10)
"""


def test_unhandled_error_logs_type_and_frames_but_no_detail_or_parameters(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT.replace("__SECRET__", SECRET),
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == "500", done.stderr[-3000:]
    assert SECRET not in done.stderr
    assert "DETAIL" not in done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    ours = next(line for line in lines if line["event"] == "unhandled_error")
    assert ours["error"] == "sqlalchemy.exc.IntegrityError"
    assert ours["caused_by"] == ["ValueError"]
    assert ours["route"] == "/boom"
    assert any(frame.endswith(" in boom") for frame in ours["frames"])
    # uvicorn logs the same exception again ("Exception in ASGI application"): also safe
    server_side = [e for e in lines if e["event"].startswith("Exception in ASGI application")]
    assert server_side
    assert server_side[0]["error"] == "sqlalchemy.exc.IntegrityError"
    assert server_side[0]["frames"]


def test_fastapi_native_telemetry_stays_off_even_when_the_environment_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's own OpenTelemetry would export exception messages and rejected request values
    to any collector the environment names; the service never turns it on."""
    from services.infusion_bridge.app import create_app
    from services.infusion_bridge.settings import Settings

    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'x.db'}",
            ehr_base_url="http://ehr.test/fhir",
            sync_interval_seconds=0,
            delivery_enabled=False,
        )
    )
    config = app._telemetry  # what FastAPI(telemetry=...) was given, merged over its defaults
    assert not any(config[k] for k in ("tracing", "metrics", "logs", "operation_spans"))
    assert config["auto_configure"] is False
    assert app._native_telemetry.enabled() is False
