"""The intake floor: the least a FastAPI endpoint can do with an order and still keep it.

``POST /fhir/MedicationRequest`` checks the bearer token (with ``--issuer``), validates the
body with ``fhir.resources`` R4B (straight from the bytes) and inserts it into SQLite in WAL
mode (``synchronous=NORMAL``, as the service runs it), then answers 201 with the body. No
mapping, no rules, no versions, no identifiers, no audit record: what the service's full
intake path is measured against.

The token check belongs to the floor: since issue #9 no endpoint that takes patient data
may serve a request without one, so it is mandatory work, not the service's design. It is
the least a check can be: PyJWT verifies the RS256 signature against the issuer's key
(fetched once at start, as the service caches its JWKS), ``iss``, ``aud`` and ``exp``;
no scopes, roles or compartment. Without ``--issuer`` the floor takes any request, as
before issue #9 (to compare with figures from then).

    .venv/bin/python -m bench.floor --port 8199 --db /tmp/floor.db [--issuer URL]
"""

from __future__ import annotations

import argparse
import sqlite3
import uuid

import httpx
import jwt
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

AUDIENCE = "infusion-bridge"


def signing_keys(issuer: str) -> dict[str, jwt.PyJWK]:
    """The issuer's signing keys by ``kid`` (its discovery document, then its JWKS)."""
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    jwks = httpx.get(discovery["jwks_uri"], timeout=10).json()
    return {key.key_id: key for key in jwt.PyJWKSet.from_dict(jwks).keys if key.key_id}


def create_floor_app(db_path: str, issuer: str | None = None) -> FastAPI:
    keys = signing_keys(issuer) if issuer else {}
    db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, resource BLOB NOT NULL)")
    app = FastAPI()

    @app.post("/fhir/MedicationRequest", status_code=201)
    async def create(request: Request) -> Response:
        if issuer is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            try:
                key = keys[jwt.get_unverified_header(token).get("kid", "")]
                jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=issuer)
            except (jwt.InvalidTokenError, KeyError):
                return Response(status_code=401)
            if scheme.lower() != "bearer":
                return Response(status_code=401)
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
    parser.add_argument("--issuer", help="verify bearer tokens of this OIDC issuer")
    args = parser.parse_args()
    uvicorn.run(
        create_floor_app(args.db, args.issuer),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
