"""``GET /.well-known/jwks.json``: the public keys of this service's client assertions
(SMART Backend Services), so an EHR can register it by URL. Public, like discovery."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..usecases.service_keys import public_key_set
from .deps import RuntimeDep

router = APIRouter(tags=["fhir"])


@router.get("/.well-known/jwks.json")
async def jwks(rt: RuntimeDep) -> JSONResponse:
    """The JWKS of the key(s) configured in ``INFUSION_EHR_PRIVATE_KEY(_PATH)``."""
    return JSONResponse(
        public_key_set(rt),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )
