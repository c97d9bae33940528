"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from . import __version__
from .api import (
    deliveries,
    fhir_batch,
    fhir_metadata,
    fhir_orders,
    fhir_records,
    health,
    hooks,
    metrics,
    orders,
    patients,
    sessions,
)
from .api.errors import install_error_handlers
from .api.middleware import AccessLogMiddleware, BodySizeLimitMiddleware
from .clock import utcnow
from .delivery.policy import RetryPolicy
from .delivery.worker import DeliveryWorker
from .domain.catalog import DrugCatalog, load_catalog
from .ehr.client import EhrClient
from .ehr.health import EhrHealth
from .ehr.probe import EhrProbe
from .logging import get_logger
from .metrics import Metrics
from .runtime import Runtime
from .settings import Settings, get_settings
from .store.db import make_engine, migrate
from .usecases.order_sync import periodic_sync
from .web import install_web

log = get_logger(__name__)


def build_ehr_client(
    settings: Settings,
    *,
    health: EhrHealth | None = None,
    metrics: Metrics | None = None,
    probe: bool = False,
) -> EhrClient:
    """The EHR client; ``probe=True``: the probe's own (one connection, its short timeout)."""
    token = settings.ehr_bearer_token.get_secret_value() if settings.ehr_bearer_token else None
    timeout = settings.ehr_probe_timeout_seconds if probe else settings.ehr_timeout_seconds
    return EhrClient(
        settings.ehr_base_url,
        timeout=timeout,
        connect_timeout=min(settings.ehr_connect_timeout_seconds, timeout),
        max_connections=1 if probe else settings.ehr_max_connections,
        bearer_token=token,
        health=health,
        metrics=metrics,
    )


def build_worker(
    settings: Settings,
    engine: Engine,
    ehr: EhrClient,
    catalog: DrugCatalog,
    metrics: Metrics | None = None,
) -> DeliveryWorker:
    return DeliveryWorker(
        engine,
        ehr,
        catalog,
        identifier_system=settings.identifier_system,
        policy=RetryPolicy(
            base_seconds=settings.delivery_retry_base_seconds,
            cap_seconds=settings.delivery_retry_cap_seconds,
            horizon=timedelta(seconds=settings.delivery_retry_horizon_seconds),
            warn_after=timedelta(seconds=settings.delivery_warn_after_seconds),
            recovery_spread_seconds=settings.delivery_recovery_spread_seconds,
        ),
        concurrency=settings.delivery_concurrency,
        lease=timedelta(seconds=settings.delivery_lease_seconds),
        clock=utcnow,
        metrics=metrics,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    app_metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        if settings.auto_migrate:
            migrate(engine)
        health = EhrHealth()
        ehr = build_ehr_client(settings, health=health, metrics=app_metrics)
        probe = EhrProbe(
            build_ehr_client(settings, health=health, metrics=app_metrics, probe=True),
            timeout=settings.ehr_probe_timeout_seconds,
        )
        rt = Runtime(
            settings=settings,
            engine=engine,
            ehr=ehr,
            catalog=load_catalog(settings.catalog_path),
            probe=probe,
            metrics=app_metrics,
        )
        app.state.runtime = rt
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(probe.run(settings.ehr_probe_interval_seconds))
        ]
        if settings.delivery_enabled:
            worker = build_worker(settings, engine, ehr, rt.catalog, app_metrics)
            rt.wake_delivery = worker.notify
            health.on_recovered(worker.ehr_recovered)
            tasks.append(asyncio.create_task(worker.run(settings.delivery_poll_seconds)))
        if settings.sync_interval_seconds > 0:
            tasks.append(asyncio.create_task(periodic_sync(rt)))
        log.info(
            "started", ehr_base_url=settings.ehr_base_url, database=engine.url.get_backend_name()
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await ehr.aclose()
            await probe.aclose()
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
    app.add_middleware(AccessLogMiddleware, metrics=app_metrics)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(orders.router)
    app.include_router(fhir_metadata.router)
    app.include_router(fhir_orders.router)
    app.include_router(fhir_batch.router)
    app.include_router(fhir_orders.hook_router)
    app.include_router(hooks.router)
    app.include_router(sessions.router)
    app.include_router(deliveries.router)
    app.include_router(fhir_records.router)
    app.include_router(patients.router)
    install_web(app)
    return app
