"""The clinician pages: a filtered session list and one page per session.

Server-rendered with Jinja2 from the same store queries and :func:`session_view` as the JSON
API; the view models are built in :mod:`.views` (text in :mod:`.formatting`, chart data in
:mod:`.chart`). The session page embeds the chart data as JSON (``<script
type="application/json" id="session-data">``); ``static/session-chart.js`` draws the vitals
chart and the event markers from it with the vendored Chart.js. No page loads anything from
another host (see the Content-Security-Policy below).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..api.sessions import SessionView, session_view
from ..api.state import app_state
from ..domain.orders import patient_reference
from ..store.db import session_scope
from ..store.outbox import deliveries_for, statuses_by_session
from ..store.sessions import get_session_row, list_sessions
from .formatting import STATE_LABELS, drug_display
from .views import build_session_page, parse_filters, session_rows

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/ui/static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Only this service: a page that tried to load anything from elsewhere would be blocked."""

router = APIRouter(prefix="/ui", include_in_schema=False)

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
_env.globals.update(
    static=lambda name: f"{STATIC_PREFIX}/{name}?v={__version__}",
    state_labels=STATE_LABELS,
    version=__version__,
)


def install_web(app: FastAPI) -> None:
    """Add the clinician pages, their static files, and ``GET /`` -> the session list."""
    app.include_router(router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="ui-static")

    @app.get("/", include_in_schema=False)
    async def _home() -> RedirectResponse:
        return RedirectResponse("/ui/sessions", status_code=302)


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(**context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"},
    )


def json_for_script(data: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` break-out)."""
    text = orjson.dumps(data).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704  (escaped above; JSON, not HTML)


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
async def session_page(request: Request, session_id: str) -> HTMLResponse:
    state = app_state(request)

    def load() -> SessionView | None:
        with session_scope(state.engine) as session:
            row = get_session_row(session, session_id)
            if row is None:
                return None
            return session_view(row, list(deliveries_for(session, session_id)))

    view = await run_in_threadpool(load)
    if view is None:
        return render("not_found.html", 404, session_id=session_id, title="Session not found")
    page = build_session_page(view, state.catalog)
    return render(
        "session.html",
        page=page,
        s=view,
        chart_json=json_for_script(page.chart),
        title=f"{page.drug_name} · {view.patient}",
    )


@router.get("/sessions", response_class=HTMLResponse)
async def sessions_page(request: Request) -> HTMLResponse:
    state = app_state(request)
    filters = parse_filters(dict(request.query_params))
    catalog = state.catalog
    infusion_drugs = (d.key for d in catalog.drugs if d.drug_class != "premedication")
    drugs = sorted(((k, drug_display(catalog, k)) for k in infusion_drugs), key=lambda kv: kv[1])
    if filters.errors:
        return render(
            "sessions.html",
            400,
            f=filters,
            rows=[],
            total=0,
            drugs=drugs,
            title="Infusion sessions",
        )
    patient = patient_reference(filters.patient) if filters.patient else None

    def load() -> tuple[int, list[dict[str, str]]]:
        with session_scope(state.engine) as session:
            total, rows = list_sessions(
                session,
                patient=patient or None,
                state=filters.state or None,
                drug=filters.drug or None,
                since=filters.since_dt,
                until=filters.until_dt,
                offset=filters.offset,
                limit=filters.limit,
            )
            deliveries = statuses_by_session(session, [r.id for r in rows])
            return total, session_rows(rows, deliveries, catalog)

    total, rows = await run_in_threadpool(load)
    return render(
        "sessions.html",
        f=filters,
        rows=rows,
        total=total,
        drugs=drugs,
        title="Infusion sessions",
    )
