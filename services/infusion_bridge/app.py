"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.engine import Engine

from . import __version__
from .api import (
    deliveries,
    docs,
    fhir_audit,
    fhir_batch,
    fhir_metadata,
    fhir_orders,
    fhir_records,
    health,
    hooks,
    jwks,
    metrics,
    orders,
    patients,
    sessions,
    smart_configuration,
)
from .api.errors import install_error_handlers
from .api.middleware import (
    AccessLogMiddleware,
    AuditMiddleware,
    BodySizeLimitMiddleware,
    HeadMiddleware,
    JsonBodyMiddleware,
)
from .auth.tokens import TokenVerifier
from .clock import utcnow
from .delivery.policy import RetryPolicy
from .delivery.worker import DeliveryWorker
from .domain.catalog import DrugCatalog, load_catalog
from .ehr.backend_auth import BackendServicesAuth
from .ehr.client import EhrClient
from .ehr.health import EhrHealth
from .ehr.keys import SigningKey, load_signing_key
from .ehr.probe import EhrProbe
from .logging import get_logger
from .metrics import Metrics
from .runtime import Runtime
from .settings import Settings, get_settings
from .store.db import make_engine, migrate
from .store.group_commit import GroupCommit
from .store.wal import WalCheckpointer
from .usecases import ehr_history
from .usecases.order_sync import periodic_sync
from .web import install_web

log = get_logger(__name__)


def load_ehr_signing_key(settings: Settings) -> SigningKey | None:
    """The service's private key for SMART Backend Services, from the variable or the file."""
    if settings.ehr_private_key is not None:
        return load_signing_key(settings.ehr_private_key.get_secret_value().encode())
    if settings.ehr_private_key_path is not None:
        return load_signing_key(settings.ehr_private_key_path.read_bytes())
    return None


def build_ehr_auth(settings: Settings) -> BackendServicesAuth | None:
    """SMART Backend Services tokens when ``INFUSION_EHR_CLIENT_ID`` is set, else None."""
    if not settings.ehr_client_id:
        return None
    key = load_ehr_signing_key(settings)
    if key is None:
        raise RuntimeError(
            "INFUSION_EHR_CLIENT_ID is set but no private key: set "
            "INFUSION_EHR_PRIVATE_KEY_PATH (or INFUSION_EHR_PRIVATE_KEY)"
        )
    return BackendServicesAuth(
        client_id=settings.ehr_client_id,
        key=key,
        scopes=settings.ehr_scopes,
        ehr_base_url=settings.ehr_base_url,
        token_url=settings.ehr_token_url,
        http=httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.ehr_timeout_seconds, connect=settings.ehr_connect_timeout_seconds
            )
        ),
    )


def build_ehr_client(
    settings: Settings,
    *,
    health: EhrHealth | None = None,
    metrics: Metrics | None = None,
    probe_of: EhrClient | None = None,
) -> EhrClient:
    """The EHR client (delivery worker, sync, history pulls): SMART Backend Services tokens
    when ``INFUSION_EHR_CLIENT_ID`` is set, else the static bearer token. With ``probe_of``:
    the background probe's own client (one connection, its short timeout) sharing that
    client's authorization, so the worker, sync and probe use one cached token."""
    probe = probe_of is not None
    timeout = settings.ehr_probe_timeout_seconds if probe else settings.ehr_timeout_seconds
    auth = probe_of.auth if probe_of is not None else build_ehr_auth(settings)
    token = settings.ehr_bearer_token.get_secret_value() if settings.ehr_bearer_token else None
    return EhrClient(
        settings.ehr_base_url,
        timeout=timeout,
        connect_timeout=min(settings.ehr_connect_timeout_seconds, timeout),
        max_connections=1 if probe else settings.ehr_max_connections,
        bearer_token=None if auth is not None else token,
        auth=auth,
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


LOOPBACK = ("127.0.0.1", "::1", "localhost")
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


def check_auth_switch(settings: Settings, host: str) -> None:
    """Sign-in can be switched off only for local experiments: loopback only, loudly."""
    if not settings.auth_disabled:
        return
    if host not in LOOPBACK:
        raise RuntimeError(
            f"INFUSION_AUTH_DISABLED is set: refusing to serve on {host} (loopback only)"
        )
    log.warning(
        "auth_disabled",
        detail="INFUSION_AUTH_DISABLED: every request is allowed without sign-in (local only)",
    )


def build_verifier(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> TokenVerifier:
    return TokenVerifier(
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        jwks_url=settings.auth_jwks_url,
        leeway_seconds=settings.auth_leeway_seconds,
        http=httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=3.0), transport=transport),
    )


def create_app(
    settings: Settings | None = None, *, auth_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The service. ``auth_transport`` replaces the network towards the identity provider
    (tests serve a JWKS in-process)."""
    settings = settings or get_settings()
    check_auth_switch(settings, settings.host)

    app_metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        if settings.auto_migrate:
            migrate(engine)
        health = EhrHealth()
        ehr = build_ehr_client(settings, health=health, metrics=app_metrics)
        probe = EhrProbe(
            build_ehr_client(settings, health=health, metrics=app_metrics, probe_of=ehr),
            timeout=settings.ehr_probe_timeout_seconds,
        )
        signing_key = load_ehr_signing_key(settings)
        verifier = build_verifier(settings, auth_transport)
        rt = Runtime(
            settings=settings,
            engine=engine,
            ehr=ehr,
            catalog=load_catalog(settings.catalog_path),
            verifier=verifier,
            writes=GroupCommit(engine),
            public_keys=[signing_key.public_jwk] if signing_key else [],
            probe=probe,
            metrics=app_metrics,
        )
        app.state.runtime = rt
        checkpoints = WalCheckpointer(engine)
        checkpoints.start()
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
        pulls: set[asyncio.Task[None]] = set()
        if settings.ehr_history_on_order:
            pulls_due = ehr_history.OrderPulls()

            def request_pull(patient: str) -> None:
                if not pulls_due.due(patient):
                    return
                # a fresh context: the pull is the service's own work, not part of the
                # request that brought the order (nor of that request's audit record)
                task = asyncio.create_task(
                    ehr_history.pull_in_background(rt, patient, pulls_due.running),
                    context=contextvars.Context(),
                )
                pulls.add(task)
                task.add_done_callback(pulls.discard)

            rt.request_history_pull = request_pull
        log.info(
            "started", ehr_base_url=settings.ehr_base_url, database=engine.url.get_backend_name()
        )
        try:
            yield
        finally:
            tasks += list(pulls)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await ehr.aclose()
            await probe.aclose()
            await verifier.http.aclose()
            rt.writes.close()
            checkpoints.stop()
            engine.dispose()
            log.info("stopped")

    app = FastAPI(
        title="Infusion Bridge",
        version=__version__,
        description="FHIR R4 bridge between an MS infusion center and the hospital EHR.",
        lifespan=lifespan,
        docs_url=None,  # served by api/docs.py, behind sign-in
        redoc_url=None,
        openapi_url=None,
        # FastAPI's native OpenTelemetry stays off: its logs would export exception messages
        # and rejected request values (patient data) to whatever collector the environment
        # names, and even unused it asks the global providers on every request.
        telemetry=NO_TELEMETRY,
    )
    install_error_handlers(app)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(AccessLogMiddleware, metrics=app_metrics)
    # the busiest routes first: a request is matched against the routers in this order (no
    # two serve the same path and method, so the order changes nothing else)
    fhir_orders.add_intake_route(app)
    app.include_router(fhir_orders.router)
    app.include_router(sessions.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(orders.router)
    app.include_router(fhir_metadata.router)
    app.include_router(fhir_batch.router)
    app.include_router(fhir_orders.hook_router)
    app.include_router(hooks.router)
    app.include_router(deliveries.router)
    app.include_router(fhir_records.router)
    app.include_router(patients.router)
    app.include_router(fhir_audit.router)
    app.include_router(smart_configuration.router)
    app.include_router(jwks.router)
    app.include_router(docs.router)
    install_web(app)
    return app
