"""Command line: ``infusion-bridge serve | migrate | sync | token | keys generate | check``."""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import httpx
import typer
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .app import build_ehr_client, check_auth_switch, create_app
from .auth.demo_tokens import NotTheDemoRealm, demo_token
from .domain.catalog import load_catalog
from .ehr.errors import EhrError
from .ehr.keys import generate_key_pair
from .logging import configure_logging
from .settings import get_settings
from .store.db import make_engine, migrate
from .usecases.order_sync import SyncSummary, sync_orders

cli = typer.Typer(
    help="Infusion Bridge: MS infusion center <-> EHR over FHIR R4.", no_args_is_help=True
)


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Listen address (default: INFUSION_HOST)."),
    port: int | None = typer.Option(None, help="Listen port (default: INFUSION_PORT)."),
    workers: int | None = typer.Option(
        None, min=1, help="Worker processes on the one port (default: INFUSION_WORKERS)."
    ),
) -> None:
    """Run the HTTP service (several worker processes with --workers; use PostgreSQL then)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    workers = workers or settings.workers
    check_auth_switch(settings, host or settings.host)
    typer.echo(
        f"Infusion Bridge on http://{host or settings.host}:{port or settings.port} "
        f"(EHR {settings.ehr_base_url}, store {settings.database_url.split('://')[0]}, "
        f"{workers} worker process{'es' if workers > 1 else ''})",
        err=True,
    )
    if workers > 1:
        # Every worker imports the app factory and builds its own app, engine and pools
        # (nothing is shared across a fork). Migrate once, here, before they start.
        if settings.auto_migrate:
            migrate(make_engine(settings.database_url))
        os.environ["INFUSION_AUTO_MIGRATE"] = "false"
    app: FastAPI | str = "services.infusion_bridge.cli:worker_app"
    if workers == 1:
        app = create_app(settings)
        settle_heap()
    uvicorn.run(
        app,
        factory=workers > 1,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


GC_THRESHOLDS = (20_000, 20, 100)
"""Collect the youngest generation every 20,000 allocations instead of CPython's 700."""


def settle_heap() -> None:
    """Before serving: move everything allocated so far (modules, FHIR models, the app) out
    of the garbage collector's reach, and collect young objects less often.

    Every request allocates thousands of short-lived objects (pydantic models, dicts), so
    with CPython's defaults the collector ran every few requests and its full passes walked
    the hundreds of thousands of objects that live as long as the process: under load that
    was about a fifth of the CPU and the slowest 1 % of answers (measured in
    ``bench/native.py``; docs/benchmarks.md). Frozen objects are still freed by reference
    counting; only cycles among them are no longer looked for, and none are made after start.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def worker_app() -> FastAPI:
    """The app of one worker process (``serve --workers N`` starts each from here)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    settle_heap()
    return app


@cli.command("migrate")
def migrate_cmd() -> None:
    """Apply database migrations and exit."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    migrate(make_engine(settings.database_url))
    typer.echo("database is up to date")


@cli.command()
def sync(
    page_size: int | None = typer.Option(
        None, help="Orders per page (default: INFUSION_SYNC_PAGE_SIZE)."
    ),
) -> None:
    """Pull orders changed at the EHR since the last checkpoint (safe to interrupt and rerun)."""
    settings = get_settings()
    configure_logging("WARNING", settings.log_format)
    engine = make_engine(settings.database_url)
    migrate(engine)

    async def _sync() -> SyncSummary:
        with Progress(
            TextColumn("[bold]sync[/] MedicationRequest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("pages {task.fields[pages]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task("sync", total=None, pages=0)

            def on_page(summary: SyncSummary) -> None:
                progress.update(
                    task, completed=summary.received, total=summary.total, pages=summary.pages
                )

            async with build_ehr_client(settings) as ehr:
                return await sync_orders(
                    ehr,
                    engine,
                    load_catalog(settings.catalog_path),
                    page_size=page_size or settings.sync_page_size,
                    on_page=on_page,
                )

    try:
        summary = asyncio.run(_sync())
    except EhrError as exc:
        typer.echo(
            f"sync stopped: {exc} (the checkpoint keeps what was done; rerun to resume)", err=True
        )
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        typer.echo("sync interrupted; rerun to resume from the checkpoint", err=True)
        raise typer.Exit(130) from None
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items())) or "nothing new"
    typer.echo(
        f"synced {summary.received} orders in {summary.pages} pages: {outcomes}; "
        f"rejected {summary.rejected}; checkpoint {summary.checkpoint or '-'}"
    )


@cli.command()
def token(
    as_: str = typer.Option(
        ..., "--as", help="nurse | clinician | admin | security-officer | ehr | prometheus"
    ),
) -> None:
    """Print a fresh access token from the local demo identity provider (for curl)."""
    settings = get_settings()
    try:
        typer.echo(demo_token(settings.auth_issuer, as_))
    except (NotTheDemoRealm, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except httpx.HTTPError as exc:
        typer.echo(
            f"the identity provider at {settings.auth_issuer} did not answer: {exc}", err=True
        )
        raise typer.Exit(1) from exc


keys_cli = typer.Typer(help="The service's signing key for SMART Backend Services.")
cli.add_typer(keys_cli, name="keys")


@keys_cli.command("generate")
def keys_generate(
    out: Path = typer.Option(
        ..., help="Private key file to write (mode 0600; keep it outside the repository)."
    ),
    kind: str = typer.Option("rsa", help="rsa (RS384, 3072 bits) or ec (ES384, P-384)."),
) -> None:
    """Write a new key pair: the private key and beside it its public key set (.jwks.json)."""
    if kind not in ("rsa", "ec"):
        typer.echo("--kind must be rsa or ec", err=True)
        raise typer.Exit(2)
    try:
        key = generate_key_pair(out, kind=kind)
    except FileExistsError as exc:
        typer.echo(f"{out} exists; not overwriting a key", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"wrote {out} (private, 0600) and {out.with_name(out.stem + '.jwks.json')} "
        f"(public); kid {key.kid}, alg {key.algorithm}.\n"
        f"Set INFUSION_EHR_PRIVATE_KEY_PATH={out} and register the public key set at the EHR "
        "(or its URL: http://<service>/.well-known/jwks.json)."
    )


@cli.command()
def check() -> None:
    """Check that the EHR's FHIR base answers /metadata (exit 1 if not)."""
    settings = get_settings()

    async def _check() -> str:
        async with build_ehr_client(settings) as ehr:
            meta = await ehr.metadata()
        return str(meta.get("fhirVersion"))

    try:
        version = asyncio.run(_check())
    except EhrError as exc:
        typer.echo(f"EHR not reachable at {settings.ehr_base_url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"EHR at {settings.ehr_base_url} answers, FHIR {version}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
