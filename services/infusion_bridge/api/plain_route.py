"""A route served without FastAPI's per-request resolver, for the busiest endpoint.

FastAPI answers every request by solving the endpoint's dependencies (one pass per
dependency, each parsing the query string and the cookies again), then the endpoint's own
parameters, then validating what it returns. An endpoint that takes the bare ``Request``,
runs its checks itself and returns a ``Response`` needs none of that: :class:`PlainRoute`
calls it directly. Middleware, exception handlers and the OpenAPI entry are as for any route.

A dependency declared for such an endpoint would never run, so the route refuses one, its
routers' included, and any parameter but the request (a ``Response`` or ``BackgroundTasks``
too): when it is built, or, for a dependency of the whole app, at its first request (it
fails closed, never skips).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

# FastAPI 0.165 keeps included routers and builds each route once more per including router,
# with that router's dependencies merged in. Private, so imported, not looked up: if a
# FastAPI release renames it, the service fails to start instead of checking less.
from fastapi.routing import _effective_route_context_var as _INCLUDED_AS


class PlainRoute(APIRoute):
    """``async def endpoint(request: Request) -> Response``, called as it is."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        context = _INCLUDED_AS.get()
        dependant = self.dependant
        if context is not None and context.original_route is self:
            dependant = context.dependant
        _refuse_anything_to_resolve(self.path, dependant)
        handler: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return handler


def _refuse_anything_to_resolve(path: str, d: Dependant) -> None:
    extra = [
        *d.dependencies,
        *d.path_params,
        *d.query_params,
        *d.header_params,
        *d.cookie_params,
        *d.body_params,
    ]
    takes = inspect.signature(d.call).parameters if d.call is not None else {}
    if extra or d.request_param_name is None or len(takes) != 1:
        raise TypeError(
            f"{path}: a PlainRoute endpoint takes the Request alone (its checks are its own to "
            "call); dependencies and parameters, its router's included, would never be resolved"
        )
