"""The clinician pages: a filtered session list and one page per session.

Server-rendered with Jinja2 from the same store queries and :func:`session_view` as the JSON
API. The session page embeds the chart data as JSON (``<script type="application/json"
id="session-data">``); ``static/session-chart.js`` draws the vitals chart and the event markers
from it with the vendored Chart.js. No page loads anything from another host (see the
Content-Security-Policy below).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..api.sessions import DeliveryView, SessionView, TimelineItem, session_view
from ..api.state import app_state
from ..domain.catalog import DrugCatalog
from ..domain.sessions import (
    TERMINAL,
    InfusionEnd,
    InfusionStart,
    IvInsertion,
    NotDone,
    Pause,
    Premedication,
    RateChange,
    Reaction,
    Resume,
    SessionState,
    Stop,
    Vitals,
)
from ..store.db import session_scope
from ..store.outbox import deliveries_for
from ..store.sessions import get_session_row, list_sessions
from ..store.tables import SessionRow

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/ui/static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Only this service: a page that tried to load anything from elsewhere would be blocked."""

DEFAULT_LIMIT = 25
MAX_LIMIT = 200

MARKER_TYPES = (
    "infusion-start",
    "rate-change",
    "pause",
    "resume",
    "reaction",
    "infusion-end",
    "stop",
    "discharge",
)
"""Events drawn as markers on the vitals chart (all events are in the events table)."""

EVENT_LABELS = {
    "check-in": "Check-in",
    "premedication": "Premedication",
    "iv-insertion": "IV placed",
    "infusion-start": "Infusion start",
    "rate-change": "Rate change",
    "pause": "Paused",
    "resume": "Resumed",
    "vitals": "Vitals",
    "reaction": "Reaction",
    "infusion-end": "Infusion end",
    "observation-start": "Observation start",
    "discharge": "Discharge",
    "stop": "Stopped early",
    "not-done": "Not done",
    "cancel": "Cancelled",
}

STATE_LABELS = {s.value: s.value.replace("-", " ").capitalize() for s in SessionState}

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


# ---------------------------------------------------------------- formatting helpers


def num(value: float | None) -> str:
    """600.0 -> '600', 36.80 -> '36.8'."""
    return "" if value is None else f"{value:g}"


def as_aware(dt: datetime) -> datetime:
    """Datetimes read back from SQLite have lost their offset; they were stored in UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def tz_label(tz: tzinfo) -> str:
    offset = datetime.now(tz).utcoffset() or timedelta(0)
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def chairside_tz(row: SessionRow) -> tzinfo:
    """The offset of the session's first event (chair-side clock); UTC if it has none."""
    events = (row.session_json or {}).get("events") or []
    if events:
        try:
            at = datetime.fromisoformat(events[0]["event"]["at"])
        except (KeyError, TypeError, ValueError):
            return UTC
        if at.tzinfo is not None:
            return at.tzinfo
    return UTC


def fmt_time(dt: datetime | None, tz: tzinfo) -> str:
    return "" if dt is None else as_aware(dt).astimezone(tz).strftime("%H:%M")


def fmt_datetime(dt: datetime | None, tz: tzinfo) -> str:
    return "" if dt is None else as_aware(dt).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def fmt_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, mins = divmod(minutes, 60)
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


def quantity(q: Any) -> str:
    return f"{num(q.value)} {q.unit}"


def vitals_summary(v: Vitals) -> str:
    parts = []
    if v.systolic_mmhg is not None and v.diastolic_mmhg is not None:
        parts.append(f"BP {num(v.systolic_mmhg)}/{num(v.diastolic_mmhg)} mmHg")
    if v.heart_rate_per_min is not None:
        parts.append(f"HR {num(v.heart_rate_per_min)}/min")
    if v.respiratory_rate_per_min is not None:
        parts.append(f"RR {num(v.respiratory_rate_per_min)}/min")
    if v.temperature_c is not None:
        parts.append(f"T {num(v.temperature_c)} °C")
    if v.spo2_percent is not None:
        parts.append(f"SpO₂ {num(v.spo2_percent)} %")
    if v.weight_kg is not None:
        parts.append(f"Weight {num(v.weight_kg)} kg")
    return " · ".join(parts)


def reaction_summary(r: Reaction) -> str:
    text = f"{r.severity.capitalize()}: {', '.join(r.symptoms)}; action: {r.action}"
    if r.rate_ml_per_h is not None:
        text += f" (to {num(r.rate_ml_per_h)} mL/h)"
    if r.treatment:
        text += f"; treatment: {r.treatment}"
    return text


def event_details(item: TimelineItem) -> str:
    e = item.event
    text = ""
    if isinstance(e, Premedication):
        text = f"{e.drug} {quantity(e.dose)} {e.route}"
    elif isinstance(e, IvInsertion):
        text = f"{e.gauge} G, {e.site}"
    elif isinstance(e, InfusionStart | RateChange):
        text = f"Rate {num(e.rate_ml_per_h)} mL/h"
    elif isinstance(e, Resume):
        text = f"Rate {num(e.rate_ml_per_h)} mL/h" if e.rate_ml_per_h is not None else ""
    elif isinstance(e, Pause):
        text = e.reason or ""
    elif isinstance(e, Vitals):
        text = vitals_summary(e)
    elif isinstance(e, Reaction):
        text = reaction_summary(e)
    elif isinstance(e, InfusionEnd):
        text = f"Dose given {quantity(e.dose_given)}, volume {num(e.volume_ml)} mL"
    elif isinstance(e, Stop):
        text = f"{e.reason}; dose given {quantity(e.dose_given)}"
        if e.volume_ml is not None:
            text += f", volume {num(e.volume_ml)} mL"
    elif isinstance(e, NotDone):
        text = e.reason
    else:
        text = getattr(e, "override_reason", None) or getattr(e, "reason", None) or ""
    if e.note:
        text = f"{text} — {e.note}" if text else e.note
    return text


def marker_label(item: TimelineItem) -> str:
    e = item.event
    if isinstance(e, InfusionStart):
        return f"Start {num(e.rate_ml_per_h)} mL/h"
    if isinstance(e, RateChange):
        return f"Rate {num(e.rate_ml_per_h)} mL/h"
    if isinstance(e, Resume):
        return "Resumed" + (f" {num(e.rate_ml_per_h)} mL/h" if e.rate_ml_per_h else "")
    if isinstance(e, Reaction):
        return f"Reaction ({e.severity})"
    if isinstance(e, InfusionEnd):
        return "Infusion end"
    if isinstance(e, Stop):
        return "Stopped"
    if isinstance(e, Pause):
        return "Paused"
    return EVENT_LABELS.get(e.type, e.type)


# ---------------------------------------------------------------- the session page


@dataclass
class SessionPageModel:
    """Everything the session template shows, already formatted."""

    view: SessionView
    drug_name: str
    drug_brand: str
    tz_label: str
    started: str
    ended: str
    infusion_duration: str
    events: list[dict[str, str]]
    vitals: list[dict[str, str]]
    premedications: list[dict[str, str]]
    reactions: list[dict[str, str]]
    deliveries: list[dict[str, str]]
    delivery_note: str
    markers: list[dict[str, Any]]
    chart: dict[str, Any]
    has_vitals: bool


CHART_FIELDS = {
    "systolic": "systolic_mmhg",
    "diastolic": "diastolic_mmhg",
    "heart_rate": "heart_rate_per_min",
    "spo2": "spo2_percent",
    "temperature": "temperature_c",
}


def drug_display(catalog: DrugCatalog | None, key: str, *, brand: bool = True) -> str:
    """``ocrelizumab`` -> ``Ocrelizumab (Ocrevus)``; unknown keys as they are."""
    entry = catalog.by_key(key) if catalog is not None else None
    if entry is None:
        return key
    name = entry.name[:1].upper() + entry.name[1:]
    return f"{name} ({entry.brands[0]})" if brand and entry.brands else name


def brand_of(catalog: DrugCatalog | None, key: str) -> str:
    entry = catalog.by_key(key) if catalog is not None else None
    return entry.brands[0] if entry is not None and entry.brands else ""


def delivery_rows(deliveries: Sequence[DeliveryView], tz: tzinfo) -> list[dict[str, str]]:
    return [
        {
            "id": str(d.id),
            "status": d.status,
            "attempts": str(d.attempts),
            "queued": fmt_datetime(d.created_at, tz),
            "next_attempt": fmt_datetime(d.next_attempt_at, tz) if d.status == "pending" else "",
            "delivered": fmt_datetime(d.delivered_at, tz),
            "last_error": d.last_error or "",
        }
        for d in deliveries
    ]


def delivery_note(view: SessionView) -> str:
    if view.deliveries:
        last = view.deliveries[-1]
        return {
            "pending": "Queued: waiting to be written back to the EHR.",
            "delivering": "Being written back to the EHR now.",
            "delivered": "Written back to the EHR.",
            "dead": "Write-back FAILED for good: it needs attention (retry from the "
            "deliveries API once the cause is fixed).",
        }.get(last.status, last.status)
    if view.state == SessionState.CANCELLED:
        return "Cancelled sessions are not written back to the EHR."
    return (
        "Not queued yet: the record goes back to the EHR once the session is "
        "discharged, stopped or marked not done."
    )


def build_session_page(view: SessionView, catalog: DrugCatalog | None) -> SessionPageModel:
    timeline = view.timeline
    tz: tzinfo = UTC
    if timeline and timeline[0].event.at.tzinfo is not None:
        tz = timeline[0].event.at.tzinfo
    t0 = timeline[0].event.at if timeline else as_aware(view.created_at)

    def minutes(at: datetime) -> float:
        return round((as_aware(at) - t0).total_seconds() / 60, 2)

    events: list[dict[str, str]] = []
    vitals_rows: list[dict[str, str]] = []
    premeds: list[dict[str, str]] = []
    reactions: list[dict[str, str]] = []
    markers: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for item in timeline:
        e = item.event
        time = fmt_time(e.at, tz)
        events.append(
            {
                "seq": str(item.seq),
                "time": time,
                "datetime": as_aware(e.at).isoformat(),
                "type": e.type,
                "label": EVENT_LABELS.get(e.type, e.type),
                "details": event_details(item),
                "by": e.by or "",
                "marker": "yes" if e.type in MARKER_TYPES else "",
            }
        )
        if isinstance(e, Vitals):
            vitals_rows.append(
                {
                    "time": time,
                    "bp": (
                        f"{num(e.systolic_mmhg)}/{num(e.diastolic_mmhg)}"
                        if e.systolic_mmhg is not None
                        else ""
                    ),
                    "hr": num(e.heart_rate_per_min),
                    "rr": num(e.respiratory_rate_per_min),
                    "temp": num(e.temperature_c),
                    "spo2": num(e.spo2_percent),
                    "weight": num(e.weight_kg),
                    "by": e.by or "",
                }
            )
            point: dict[str, Any] = {"t": minutes(e.at), "at": as_aware(e.at).isoformat()}
            point.update({k: getattr(e, attr) for k, attr in CHART_FIELDS.items()})
            if any(point[k] is not None for k in CHART_FIELDS):
                points.append(point)
        elif isinstance(e, Premedication):
            premeds.append(
                {
                    "time": time,
                    "drug": drug_display(catalog, e.drug, brand=False),
                    "dose": quantity(e.dose),
                    "route": e.route,
                    "by": e.by or "",
                }
            )
        elif isinstance(e, Reaction):
            reactions.append(
                {
                    "time": time,
                    "symptoms": ", ".join(e.symptoms),
                    "severity": e.severity,
                    "action": e.action
                    + (f" to {num(e.rate_ml_per_h)} mL/h" if e.rate_ml_per_h else ""),
                    "treatment": e.treatment or "",
                    "by": e.by or "",
                }
            )
        if e.type in MARKER_TYPES:
            marker: dict[str, Any] = {
                "t": minutes(e.at),
                "at": as_aware(e.at).isoformat(),
                "time": time,
                "type": e.type,
                "label": marker_label(item),
            }
            if isinstance(e, Reaction):
                marker["severity"] = e.severity
            markers.append(marker)

    start = next((i.event.at for i in timeline if isinstance(i.event, InfusionStart)), None)
    end = next(
        (i.event.at for i in timeline if isinstance(i.event, InfusionEnd | Stop)),
        None,
    )
    offset = as_aware(t0).utcoffset() if timeline else timedelta(0)
    chart = {
        "session_id": view.id,
        "t0": as_aware(t0).isoformat(),
        "t0_ms": int(as_aware(t0).timestamp() * 1000),
        "utc_offset_minutes": int((offset or timedelta(0)).total_seconds() // 60),
        "tz": tz_label(tz),
        "vitals": points,
        "markers": markers,
    }
    return SessionPageModel(
        view=view,
        drug_name=drug_display(catalog, view.drug, brand=False),
        drug_brand=brand_of(catalog, view.drug),
        tz_label=tz_label(tz),
        started=fmt_datetime(timeline[0].event.at, tz) if timeline else "",
        ended=(
            fmt_datetime(timeline[-1].event.at, tz)
            if timeline and view.state in {s.value for s in TERMINAL}
            else ""
        ),
        infusion_duration=fmt_duration(end - start) if start and end else "",
        events=events,
        vitals=vitals_rows,
        premedications=premeds,
        reactions=reactions,
        deliveries=delivery_rows(view.deliveries, tz),
        delivery_note=delivery_note(view),
        markers=markers,
        chart=chart,
        has_vitals=bool(points),
    )


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


# ---------------------------------------------------------------- the session list


@dataclass
class ListFilters:
    patient: str = ""
    state: str = ""
    drug: str = ""
    since: str = ""
    until: str = ""
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    errors: list[str] = field(default_factory=list)
    since_dt: datetime | None = None
    until_dt: datetime | None = None

    def query(self, **changes: Any) -> str:
        values = {
            "patient": self.patient,
            "state": self.state,
            "drug": self.drug,
            "since": self.since,
            "until": self.until,
            "offset": self.offset,
            "limit": self.limit,
        }
        values.update(changes)
        if values["limit"] == DEFAULT_LIMIT:
            del values["limit"]
        if not values["offset"]:
            del values["offset"]
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})

    @property
    def active(self) -> bool:
        return any((self.patient, self.state, self.drug, self.since, self.until))


def parse_when(text: str, *, end_of_day: bool) -> datetime:
    """``YYYY-MM-DD`` (a whole day: ``until`` includes it) or an ISO date-time (UTC if naive)."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_filters(params: dict[str, str]) -> ListFilters:
    f = ListFilters(
        patient=params.get("patient", "").strip(),
        state=params.get("state", "").strip(),
        drug=params.get("drug", "").strip(),
        since=params.get("since", "").strip(),
        until=params.get("until", "").strip(),
    )
    if f.state and f.state not in STATE_LABELS:
        f.errors.append(f"Unknown state '{f.state}'.")
    for name, end_of_day in (("since", False), ("until", True)):
        text = getattr(f, name)
        if text:
            try:
                setattr(f, f"{name}_dt", parse_when(text, end_of_day=end_of_day))
            except ValueError:
                f.errors.append(f"'{text}' is not a date (use YYYY-MM-DD).")
    for name, low, high in (("offset", 0, 1_000_000), ("limit", 1, MAX_LIMIT)):
        text = params.get(name, "").strip()
        if text:
            try:
                value = int(text)
            except ValueError:
                value = low - 1
            if not low <= value <= high:
                f.errors.append(f"'{name}' must be a whole number from {low} to {high}.")
            else:
                setattr(f, name, value)
    if f.since_dt and f.until_dt and f.since_dt >= f.until_dt:
        f.errors.append("'From' must be before 'To'.")
    return f


def session_rows(
    rows: Sequence[SessionRow], deliveries: dict[str, list[str]], catalog: DrugCatalog | None
) -> list[dict[str, str]]:
    out = []
    for row in rows:
        tz = chairside_tz(row)
        statuses = deliveries.get(row.id, [])
        if statuses:
            delivery = statuses[-1]
        elif row.state == SessionState.CANCELLED:
            delivery = "not sent"
        else:
            delivery = ""
        out.append(
            {
                "id": row.id,
                "date": fmt_datetime(row.started_at, tz) if row.started_at else "",
                "created": fmt_datetime(row.created_at, tz),
                "ended": fmt_time(row.ended_at, tz) if row.ended_at else "",
                "patient": row.patient,
                "drug": drug_display(catalog, row.drug_key),
                "order_id": row.order_id,
                "state": row.state,
                "delivery": delivery,
            }
        )
    return out


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
    patient = filters.patient
    if patient and "/" not in patient:
        patient = f"Patient/{patient}"

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
            deliveries = {r.id: [d.status for d in deliveries_for(session, r.id)] for r in rows}
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
