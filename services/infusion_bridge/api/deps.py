"""What routers get from FastAPI: ``Annotated`` dependency aliases."""

from __future__ import annotations

import hmac

from fastapi import Request

from ..runtime import RuntimeDep, get_runtime
from .errors import ApiError

__all__ = ["RuntimeDep", "get_runtime", "require_hook_secret"]


SECRET_HEADER = "x-infusion-hook-secret"  # noqa: S105 (a header name)


def require_hook_secret(request: Request) -> None:
    """Rest-hook calls carry ``INFUSION_HOOK_SECRET`` (when set) in ``X-Infusion-Hook-Secret``;
    the orders they deliver are recorded with source ``subscription``."""
    secret = get_runtime(request).settings.hook_secret
    request.scope["infusion.source"] = "subscription"
    if secret is None:
        return
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise ApiError.one(401, "login", "missing or wrong X-Infusion-Hook-Secret header")
