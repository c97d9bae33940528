"""Text for the clinician pages: numbers, times in the chair-side zone, labels, one-line event
and drug descriptions. Pure (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from ..domain.catalog import DrugCatalog
from ..domain.session_events import (
    InfusionEnd,
    InfusionStart,
    IvInsertion,
    NotDone,
    Pause,
    Premedication,
    RateChange,
    Reaction,
    Resume,
    Stop,
    Vitals,
)
from ..domain.sessions import SessionState
from ..read_models import SessionRecord, TimelineItem

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


def chairside_tz(row: SessionRecord) -> tzinfo:
    """The offset of the session's first event (chair-side clock); UTC if it has none."""
    if row.utc_offset_minutes is None:
        return UTC
    return timezone(timedelta(minutes=row.utc_offset_minutes))


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
        text = f"{item.drug_name or e.drug} {quantity(e.dose)} {e.route}"
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


def drug_display(catalog: DrugCatalog | None, key: str, *, brand: bool = True) -> str:
    """``ocrelizumab`` (or one of its RxNorm codes or NDCs) -> ``Ocrelizumab (Ocrevus)``;
    unknown codes as they are."""
    entry = catalog.by_code(key) if catalog is not None else None
    if entry is None:
        return key
    name = entry.name[:1].upper() + entry.name[1:]
    return f"{name} ({entry.brands[0]})" if brand and entry.brands else name


def brand_of(catalog: DrugCatalog | None, key: str) -> str:
    entry = catalog.by_key(key) if catalog is not None else None
    return entry.brands[0] if entry is not None and entry.brands else ""
