"""What routers get from FastAPI: ``Annotated`` dependency aliases."""

from __future__ import annotations

from ..runtime import RuntimeDep, get_runtime

__all__ = ["RuntimeDep", "get_runtime"]
