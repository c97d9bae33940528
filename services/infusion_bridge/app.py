"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import __version__
from .api import health
from .api.errors import install_error_handlers
from .api.middleware import AccessLogMiddleware, BodySizeLimitMiddleware
from .api.state import AppState
from .ehr.client import EhrClient
from .logging import get_logger
from .settings import Settings, get_settings
from .store.db import make_engine, migrate

log = get_logger(__name__)


def build_ehr_client(settings: Settings) -> EhrClient:
    token = settings.ehr_bearer_token.get_secret_value() if settings.ehr_bearer_token else None
    return EhrClient(
        settings.ehr_base_url,
        timeout=settings.ehr_timeout_seconds,
        connect_timeout=settings.ehr_connect_timeout_seconds,
        max_connections=settings.ehr_max_connections,
        bearer_token=token,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        if settings.auto_migrate:
            migrate(engine)
        ehr = build_ehr_client(settings)
        app.state.infusion = AppState(settings=settings, engine=engine, ehr=ehr)
        log.info(
            "started", ehr_base_url=settings.ehr_base_url, database=engine.url.get_backend_name()
        )
        try:
            yield
        finally:
            await ehr.aclose()
            engine.dispose()
            log.info("stopped")

    app = FastAPI(
        title="Infusion Bridge",
        version=__version__,
        description="FHIR R4 bridge between an MS infusion center and the hospital EHR.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)
    app.include_router(health.router)
    return app
