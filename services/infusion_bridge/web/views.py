"""View models of the clinician pages, already formatted for the templates: the session page
(:func:`build_session_page`) and the session list (its filters and rows). Pure (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode

from ..domain.catalog import DrugCatalog
from ..domain.session_events import (
    InfusionEnd,
    InfusionStart,
    Premedication,
    Reaction,
    Stop,
    Vitals,
)
from ..domain.sessions import TERMINAL, SessionState
from ..read_models import DeliveryView, SessionRecord, SessionView
from ..usecases.records import SessionFilters
from .chart import MARKER_TYPES, session_chart
from .formatting import (
    EVENT_LABELS,
    STATE_LABELS,
    as_aware,
    brand_of,
    chairside_tz,
    drug_display,
    event_details,
    fmt_datetime,
    fmt_duration,
    fmt_time,
    num,
    quantity,
    tz_label,
)

DEFAULT_LIMIT = 25
MAX_LIMIT = 200

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
    patient_label: str
    billing: dict[str, Any] | None


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

    events: list[dict[str, str]] = []
    vitals_rows: list[dict[str, str]] = []
    premeds: list[dict[str, str]] = []
    reactions: list[dict[str, str]] = []
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

    start = next((i.event.at for i in timeline if isinstance(i.event, InfusionStart)), None)
    end = next(
        (i.event.at for i in timeline if isinstance(i.event, InfusionEnd | Stop)),
        None,
    )
    chart = session_chart(view, tz)
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
        markers=chart["markers"],
        chart=chart,
        has_vitals=bool(chart["vitals"]),
        patient_label=patient_label(view),
        billing=billing_rows(view, tz),
    )


def patient_label(view: SessionView) -> str:
    """``Jane Chair (born 1980-04-02)``, or the reference when the name is not known."""
    if not view.patient_name:
        return view.patient
    born = f" (born {view.patient_birth_date.isoformat()})" if view.patient_birth_date else ""
    return f"{view.patient_name}{born}"


def billing_rows(view: SessionView, tz: tzinfo) -> dict[str, Any] | None:
    b = view.billing
    if b is None:
        return None
    units = f"{b.hcpcs} x {b.hcpcs_units}" if b.hcpcs and b.hcpcs_units is not None else "—"
    return {
        "start": as_aware(b.infusion_start).astimezone(tz).isoformat(),
        "stop": as_aware(b.infusion_stop).astimezone(tz).isoformat(),
        "minutes": str(b.infusion_minutes),
        "paused": str(b.paused_minutes),
        "drug": units + ("" if b.hcpcs_verified else " (code UNVERIFIED)"),
        "mg": num(b.drug_mg),
        "administration": ", ".join(f"{a.code} x {a.units}" for a in b.administration) or "IV push",
        "note": b.note,
    }


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

    def as_filters(self) -> SessionFilters:
        """The use case's filters (empty fields mean "any")."""
        return SessionFilters(
            patient=self.patient or None,
            state=self.state or None,
            drug=self.drug or None,
            since=self.since_dt,
            until=self.until_dt,
            offset=self.offset,
            limit=self.limit,
        )


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
    rows: Sequence[SessionRecord], deliveries: dict[str, list[str]], catalog: DrugCatalog | None
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
