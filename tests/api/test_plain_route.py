"""``PlainRoute``: the endpoint is called with the request as it is, errors still go through
the app's handlers, and a route that declares anything FastAPI would have to resolve (a
dependency would silently never run) is refused when it is built."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    FastAPI,
    HTTPException,
    Request,
    Response,
)
from fastapi.testclient import TestClient

from services.infusion_bridge.api.plain_route import PlainRoute


def test_the_endpoint_gets_the_request_and_its_errors_reach_the_handlers() -> None:
    router = APIRouter(route_class=PlainRoute)

    @router.post("/echo", status_code=201)
    async def echo(request: Request) -> Response:
        if request.query_params.get("fail"):
            raise HTTPException(409, "refused")
        return Response(await request.body(), status_code=201)

    app = FastAPI()
    app.include_router(router)
    client = TestClient(app)
    answer = client.post("/echo", content=b"as sent")
    assert (answer.status_code, answer.content) == (201, b"as sent")
    refused = client.post("/echo?fail=1", content=b"x")
    assert (refused.status_code, refused.json()) == (409, {"detail": "refused"})
    assert "/echo" in app.openapi()["paths"]


async def _checked() -> None:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    "endpoint",
    [
        lambda request, _: None,  # an undeclared parameter (a query parameter to FastAPI)
        lambda: None,  # no request
    ],
)
def test_an_endpoint_with_anything_to_resolve_is_refused(endpoint: object) -> None:
    router = APIRouter(route_class=PlainRoute)
    with pytest.raises(TypeError, match="takes the Request alone"):
        router.add_api_route("/x", endpoint, methods=["POST"])  # type: ignore[arg-type]


def test_a_response_or_background_tasks_parameter_is_refused() -> None:
    router = APIRouter(route_class=PlainRoute)

    async def with_response(request: Request, response: Response) -> Response:
        return response

    async def with_tasks(request: Request, tasks: BackgroundTasks) -> Response:
        return Response()

    for endpoint in (with_response, with_tasks):
        with pytest.raises(TypeError, match="takes the Request alone"):
            router.add_api_route("/x", endpoint, methods=["POST"])


def test_a_dependency_is_refused_rather_than_skipped() -> None:
    router = APIRouter(route_class=PlainRoute)

    async def guarded(request: Request, _: Annotated[None, Depends(_checked)]) -> Response:
        return Response()

    with pytest.raises(TypeError, match="would never be resolved"):
        router.add_api_route("/x", guarded, methods=["POST"])
    with pytest.raises(TypeError):
        APIRouter(route_class=PlainRoute, dependencies=[Depends(_checked)]).add_api_route(
            "/y", lambda request: None, methods=["POST"]
        )


def test_a_dependency_of_an_including_router_or_app_is_never_skipped() -> None:
    plain = APIRouter(route_class=PlainRoute)

    @plain.post("/x")
    async def endpoint(request: Request) -> Response:
        return Response("served")

    parent = APIRouter(dependencies=[Depends(_checked)])
    parent.include_router(plain)
    with pytest.raises(TypeError, match="would never be resolved"):
        FastAPI().include_router(parent)
    app = FastAPI(dependencies=[Depends(_checked)])
    app.include_router(plain)
    with pytest.raises(TypeError, match="would never be resolved"):
        TestClient(app).post("/x")  # refused at its first request: fails closed
