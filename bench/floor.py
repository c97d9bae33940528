"""The intake floor: the least a FastAPI endpoint can do with an order and still keep it.

``POST /fhir/MedicationRequest`` validates the body with ``fhir.resources`` R4B (straight
from the bytes) and inserts it into SQLite in WAL mode (``synchronous=NORMAL``, as the
service runs it), then answers 201 with the body. No mapping, no rules, no versions, no
identifiers: what the service's full intake path is measured against.

    .venv/bin/python -m bench.floor --port 8199 --db /tmp/floor.db
"""

from __future__ import annotations

import argparse
import sqlite3
import uuid

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError


def create_floor_app(db_path: str) -> FastAPI:
    db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, resource BLOB NOT NULL)")
    app = FastAPI()

    @app.post("/fhir/MedicationRequest", status_code=201)
    async def create(request: Request) -> Response:
        raw = await request.body()
        try:
            MedicationRequest.model_validate_json(raw)
        except ValidationError:
            return Response(status_code=400)
        db.execute("INSERT INTO orders (id, resource) VALUES (?, ?)", (uuid.uuid4().hex, raw))
        return Response(raw, status_code=201, media_type="application/fhir+json")

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    uvicorn.run(create_floor_app(args.db), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
