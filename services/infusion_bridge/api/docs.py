"""The OpenAPI description and its browsable page, for signed-in users only (a bearer token,
or a browser signed in to the clinician pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from ..access import Access, guard, need

router = APIRouter(include_in_schema=False)
SignedIn = Annotated[
    Access, Depends(guard(need(None), interaction="read", resource_type="OpenAPI", page=True))
]


@router.get("/openapi.json")
async def openapi(request: Request, _: SignedIn) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def docs(_: SignedIn) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Infusion Bridge API")
