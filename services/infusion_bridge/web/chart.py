"""The data behind the session page's vitals chart (drawn by ``static/session-chart.js``).

Times are minutes from the first event (``t``) plus the ISO instant (``at``); the chart shows
them in the chair-side zone. Pure (no I/O).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from ..domain.session_events import (
    InfusionEnd,
    InfusionStart,
    Pause,
    RateChange,
    Reaction,
    Resume,
    Stop,
    Vitals,
)
from ..read_models import SessionView, TimelineItem
from .formatting import EVENT_LABELS, as_aware, fmt_time, num, tz_label

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

CHART_FIELDS = {
    "systolic": "systolic_mmhg",
    "diastolic": "diastolic_mmhg",
    "heart_rate": "heart_rate_per_min",
    "spo2": "spo2_percent",
    "temperature": "temperature_c",
}
"""Chart series -> attribute of :class:`Vitals`."""


def session_chart(view: SessionView, tz: tzinfo) -> dict[str, Any]:
    """The chart JSON: the time origin, the vitals points and the event markers."""
    timeline = view.timeline
    t0 = timeline[0].event.at if timeline else as_aware(view.created_at)

    def minutes(at: datetime) -> float:
        return round((as_aware(at) - t0).total_seconds() / 60, 2)

    markers: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for item in timeline:
        e = item.event
        if isinstance(e, Vitals):
            point: dict[str, Any] = {"t": minutes(e.at), "at": as_aware(e.at).isoformat()}
            point.update({k: getattr(e, attr) for k, attr in CHART_FIELDS.items()})
            if any(point[k] is not None for k in CHART_FIELDS):
                points.append(point)
        if e.type in MARKER_TYPES:
            marker: dict[str, Any] = {
                "t": minutes(e.at),
                "at": as_aware(e.at).isoformat(),
                "time": fmt_time(e.at, tz),
                "type": e.type,
                "label": marker_label(item),
            }
            if isinstance(e, Reaction):
                marker["severity"] = e.severity
            markers.append(marker)

    offset = as_aware(t0).utcoffset() if timeline else timedelta(0)
    return {
        "session_id": view.id,
        "t0": as_aware(t0).isoformat(),
        "t0_ms": int(as_aware(t0).timestamp() * 1000),
        "utc_offset_minutes": int((offset or timedelta(0)).total_seconds() // 60),
        "tz": tz_label(tz),
        "vitals": points,
        "markers": markers,
    }


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
