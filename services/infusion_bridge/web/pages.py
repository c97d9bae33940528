"""The clinician pages: a filtered session list and one page per session.

Server-rendered with Jinja2 from the same use cases and read models as the JSON API; the
view models are built in :mod:`.views` (text in :mod:`.formatting`, chart data in
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

from .. import __version__
from ..domain.errors import NotFound
from ..runtime import RuntimeDep
from ..usecases import records, sessions
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
async def session_page(session_id: str, rt: RuntimeDep) -> HTMLResponse:
    try:
        view = await sessions.read_session(rt, session_id)
    except NotFound:
        return render("not_found.html", 404, session_id=session_id, title="Session not found")
    page = build_session_page(view, rt.catalog)
    return render(
        "session.html",
        page=page,
        s=view,
        chart_json=json_for_script(page.chart),
        title=f"{page.drug_name} · {view.patient}",
    )


@router.get("/sessions", response_class=HTMLResponse)
async def sessions_page(request: Request, rt: RuntimeDep) -> HTMLResponse:
    filters = parse_filters(dict(request.query_params))
    catalog = rt.catalog
    infusion_drugs = (d.key for d in catalog.drugs if d.drug_class != "premedication")
    drugs = sorted(((k, drug_display(catalog, k)) for k in infusion_drugs), key=lambda kv: kv[1])
    context: dict[str, Any] = {"f": filters, "drugs": drugs, "title": "Infusion sessions"}
    if filters.errors:
        return render("sessions.html", 400, rows=[], total=0, **context)
    listing = await records.session_listing(rt, filters.as_filters())
    rows = session_rows(listing.records, listing.statuses, catalog)
    return render("sessions.html", rows=rows, total=listing.total, **context)
