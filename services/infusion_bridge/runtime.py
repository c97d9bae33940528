"""What the service holds for its lifetime, shared by every entry point and use case:
settings, the database engine, the EHR client and its probe, the drug catalog, the metrics,
and the hooks that wake background work (the delivery worker, the pull sync)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from .auth.tokens import TokenVerifier
from .domain.catalog import DrugCatalog
from .ehr.client import EhrClient
from .ehr.probe import EhrProbe
from .metrics import Metrics
from .settings import Settings
from .store.group_commit import GroupCommit
from .store.infusion_sessions import SessionCache


def _nothing() -> None:
    return None


def _ignore(_patient: str) -> None:
    return None


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    ehr: EhrClient
    catalog: DrugCatalog
    verifier: TokenVerifier
    writes: GroupCommit
    """Single-order writes, committed together when they arrive together."""
    public_keys: list[dict[str, Any]] = field(default_factory=list)
    """The public JWKs of the service's own signing key(s), published for EHR registration."""
    probe: EhrProbe | None = None
    """The background EHR probe whose cached result readiness reports."""
    metrics: Metrics = field(default_factory=Metrics)
    wake_delivery: Callable[[], None] = _nothing
    """Tell the delivery worker something became due (set when a worker runs here)."""
    request_history_pull: Callable[[str], None] = _ignore
    """Start pulling a patient's history from the EHR in the background (set by the app)."""
    sessions: SessionCache = field(default_factory=SessionCache)
    """Sessions as this process last committed them (see ``SessionCache``)."""
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sync_requested: bool = False


def get_runtime(request: Request) -> Runtime:
    """The app's runtime (set by the app factory's lifespan)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _runtime(request: Request) -> Runtime:
    # A coroutine, so that FastAPI resolves it on the event loop: a plain function
    # dependency costs every request a round trip through the worker threads.
    return get_runtime(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
"""What routers and pages declare to get the runtime."""
