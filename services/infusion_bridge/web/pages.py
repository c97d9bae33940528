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
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import orjson
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .. import __version__
from ..access import (
    PAGE_USER,
    SESSION_COOKIE,
    Access,
    PageForbidden,
    SignInRequired,
    guard,
    need,
)
from ..domain.errors import DomainError, NotFound
from ..runtime import RuntimeDep
from ..usecases import records, sessions, web_sign_in
from .formatting import STATE_LABELS, drug_display
from .views import build_session_page, parse_filters, session_rows

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/ui/static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self' {idp}; base-uri 'none'; frame-ancestors 'none'"
)
"""Only this service: a page that tried to load anything from elsewhere would be blocked.
The one exception is the identity provider, where the sign-out form ends up (a form's
redirects count as its action)."""


def content_policy(request: Request | None) -> str:
    runtime = getattr(request.app.state, "runtime", None) if request is not None else None
    if runtime is None:
        return CSP.format(idp="")
    issuer = urlsplit(runtime.settings.auth_issuer)
    return CSP.format(idp=f"{issuer.scheme}://{issuer.netloc}")


router = APIRouter(prefix="/ui", include_in_schema=False)
STAFF = ("nurse", "clinician")
ReadingSession = Annotated[
    Access, Depends(guard(need("Session", "r", roles=STAFF), interaction="read", page=True))
]
ListingSessions = Annotated[
    Access, Depends(guard(need("Session", "rs", roles=STAFF), interaction="search", page=True))
]

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

    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/ui/login?{urlencode({'next': exc.next_url})}", 303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> Response:
        return message(request, 403, "Not allowed", f"Your sign-in does not allow this: {exc}")


def message(request: Request, status_code: int, heading: str, text: str) -> HTMLResponse:
    return render(
        "message.html", status_code, request, heading=heading, message=text, title=heading
    )


def render(
    template: str, status_code: int = 200, request: Request | None = None, **context: Any
) -> HTMLResponse:
    context["user"] = request.scope.get(PAGE_USER) if request is not None else None
    html = _env.get_template(template).render(**context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Content-Security-Policy": content_policy(request),
            "X-Content-Type-Options": "nosniff",
        },
    )


def json_for_script(data: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` break-out)."""
    text = orjson.dumps(data).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704  (escaped above; JSON, not HTML)


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
async def session_page(
    request: Request, session_id: str, rt: RuntimeDep, access: ReadingSession
) -> HTMLResponse:
    try:
        view = await sessions.read_session(rt, session_id, access.compartment)
    except NotFound:
        context = {"session_id": session_id, "title": "Session not found"}
        return render("not_found.html", 404, request, **context)
    page = build_session_page(view, rt.catalog)
    return render(
        "session.html",
        200,
        request,
        page=page,
        s=view,
        chart_json=json_for_script(page.chart),
        title=f"{page.drug_name} · {view.patient}",
    )


@router.get("/sessions", response_class=HTMLResponse)
async def sessions_page(request: Request, rt: RuntimeDep, access: ListingSessions) -> HTMLResponse:
    filters = parse_filters(dict(request.query_params))
    catalog = rt.catalog
    infusion_drugs = (d.key for d in catalog.drugs if d.drug_class != "premedication")
    drugs = sorted(((k, drug_display(catalog, k)) for k in infusion_drugs), key=lambda kv: kv[1])
    context: dict[str, Any] = {"f": filters, "drugs": drugs, "title": "Infusion sessions"}
    if filters.errors:
        return render("sessions.html", 400, request, rows=[], total=0, **context)
    listing = await records.session_listing(rt, filters.as_filters(), access.compartment)
    rows = session_rows(listing.records, listing.statuses, catalog)
    return render("sessions.html", 200, request, rows=rows, total=listing.total, **context)


# ---------------------------------------------------------------- sign-in (OIDC code + PKCE)


@router.get("/login")
async def login(request: Request, rt: RuntimeDep, next: str | None = None) -> Response:
    """Send the browser to the identity provider; it comes back to ``/ui/callback``."""
    cookie, url = await web_sign_in.begin(rt, _callback_url(request), next)
    response = RedirectResponse(url, status_code=303)
    _set_cookie(request, response, cookie)
    return response


@router.get("/callback")
async def callback(
    request: Request, rt: RuntimeDep, code: str = "", state: str = "", error: str = ""
) -> Response:
    """The provider's answer: finish the sign-in and go where the user was going."""
    if error or not code:
        return message(request, 401, "Sign-in did not complete", error or "no code came back")
    cookie = request.cookies.get(SESSION_COOKIE)
    try:
        next_url = await web_sign_in.finish(rt, cookie, _callback_url(request), state, code)
    except DomainError as exc:
        return message(request, 401, "Sign-in did not complete", str(exc))
    return RedirectResponse(next_url, status_code=303)


@router.post("/logout")
async def logout(
    request: Request, rt: RuntimeDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """End the browser's session here (the CSRF token proves the form is ours)."""
    after = str(request.url_for("signed_out"))
    try:
        then = await web_sign_in.sign_out(
            rt, request.cookies.get(SESSION_COOKIE), csrf_token, after
        )
    except DomainError as exc:
        return message(request, 400, "Not signed out", str(exc))
    response = RedirectResponse(then, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/signed-out")
async def signed_out(request: Request) -> HTMLResponse:
    return message(request, 200, "Signed out", "You are signed out of Infusion Bridge.")


def _callback_url(request: Request) -> str:
    return str(request.url_for("callback"))


def _set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
        max_age=24 * 3600,
    )
