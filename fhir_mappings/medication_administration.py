"""A finished :class:`InfusionSession` -> its R4 MedicationAdministrations (pure, deterministic).

One for the infusion (status from the session's final state, the effective period, the pump
rate steps as dosage text, notes for reactions and early discharge) and one per premedication.
Resources carry no ``id`` nor ``identifier``: :mod:`fhir_mappings.writeback_bundle` adds those
and the Bundle plumbing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from fhir_mappings import codes
from fhir_mappings.datatypes import (
    coding,
    drug_concept,
    fhir_date_time,
    fhir_number,
    quantity_to_fhir,
    rxnorm_concept,
    ucum_quantity,
)
from services.infusion_bridge.domain.catalog import DrugCatalog
from services.infusion_bridge.domain.orders import InfusionOrder, Quantity
from services.infusion_bridge.domain.session_events import (
    Discharge,
    GateOverride,
    InfusionEnd,
    InfusionStart,
    NotDone,
    Pause,
    Premedication,
    RateChange,
    Reaction,
    Resume,
    Stop,
)
from services.infusion_bridge.domain.sessions import (
    InfusionSession,
    RecordedEvent,
    SessionState,
    rate_from,
)

__all__ = [
    "ADMINISTRATION_STATUS",
    "infusion_administration",
    "premedication_administration",
    "reaction_text",
]

ADMINISTRATION_STATUS: Final = {
    SessionState.DISCHARGED: "completed",
    SessionState.STOPPED: "stopped",
    SessionState.NOT_DONE: "not-done",
}
"""Session state -> the infusion's MedicationAdministration.status (the states sent to the EHR)."""

_ROUTES: Final = {"intravenous": codes.ROUTE_INTRAVENOUS, "oral": codes.ROUTE_ORAL}
_INFUSION_EVENTS: Final = (InfusionStart, RateChange, Pause, Resume, InfusionEnd, Stop, NotDone)


def infusion_administration(
    session: InfusionSession,
    order: InfusionOrder,
    catalog: DrugCatalog,
    *,
    subject: str,
    encounter: str,
) -> dict[str, Any]:
    """The infusion's MedicationAdministration (``session.state`` must be a key of
    :data:`ADMINISTRATION_STATUS`). ValueError if the timeline does not match the state."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "status": ADMINISTRATION_STATUS[session.state],
    }
    outcome = _outcome(session)
    if outcome.reason:
        resource["statusReason"] = [{"text": outcome.reason}]
    resource["medicationCodeableConcept"] = drug_concept(order.drug, catalog)
    resource["subject"] = {"reference": subject}
    resource["context"] = {"reference": encounter}
    if outcome.start is None:
        resource["effectiveDateTime"] = fhir_date_time(outcome.end)
    else:
        resource["effectivePeriod"] = {
            "start": fhir_date_time(outcome.start),
            "end": fhir_date_time(outcome.end),
        }
    performers = _unique(
        i.event.by for i in session.events if isinstance(i.event, _INFUSION_EVENTS)
    )
    if performers:
        resource["performer"] = [{"actor": {"display": by}} for by in performers]
    resource["request"] = {"reference": f"MedicationRequest/{order.id}"}
    notes = _infusion_notes(session)
    if notes:
        resource["note"] = [{"text": n} for n in notes]
    if outcome.start is not None:
        rates, text = _rate_steps(session, outcome.volume_ml)
        dosage: dict[str, Any] = {"text": text} if text else {}
        dosage["route"] = _route("intravenous")
        if outcome.dose is not None:
            dosage["dose"] = quantity_to_fhir(outcome.dose)
        dosage["rateQuantity"] = ucum_quantity(rates[-1], "mL/h")
        resource["dosage"] = dosage
    # not-done: no dosage (mad-1 needs a dose or a rate, and nothing was given).
    return resource


def premedication_administration(
    event: Premedication,
    catalog: DrugCatalog,
    premed_orders: Mapping[str, str],
    *,
    subject: str,
    encounter: str,
) -> dict[str, Any]:
    """A premedication's MedicationAdministration. ``premed_orders``: catalog key (or the code
    as recorded) -> id of its MedicationRequest, set as ``request``."""
    entry = catalog.by_key(event.drug) or catalog.by_rxnorm(event.drug)
    if entry is None:
        medication: dict[str, Any] = {"text": event.drug}
        request = premed_orders.get(event.drug)
    else:
        code = event.drug if event.drug in entry.codes else entry.ingredient_code
        medication = _medication(catalog, code, entry.name)
        request = premed_orders.get(entry.key, premed_orders.get(event.drug))
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": medication,
        "subject": {"reference": subject},
        "context": {"reference": encounter},
        "effectiveDateTime": fhir_date_time(event.at),
    }
    if event.by:
        resource["performer"] = [{"actor": {"display": event.by}}]
    if request:
        resource["request"] = {"reference": f"MedicationRequest/{request}"}
    if event.note:
        resource["note"] = [{"text": event.note}]
    resource["dosage"] = {"route": _route(event.route), "dose": quantity_to_fhir(event.dose)}
    return resource


def reaction_text(event: Reaction) -> str:
    """``Infusion-related reaction: rash; action: slowed to 30 mL/h; treatment: ...``."""
    action: str = event.action
    if event.action == "slowed" and event.rate_ml_per_h is not None:
        action += f" to {fhir_number(event.rate_ml_per_h)} mL/h"
    text = f"Infusion-related reaction: {', '.join(event.symptoms)}; action: {action}"
    if event.treatment:
        text += f"; treatment: {event.treatment}"
    return text


@dataclass(frozen=True)
class _Outcome:
    """How the infusion ended: times, reason, what was given."""

    start: datetime | None
    end: datetime
    reason: str | None = None
    dose: Quantity | None = None
    volume_ml: float | None = None


def _outcome(session: InfusionSession) -> _Outcome:
    """The infusion's outcome; ValueError if the timeline does not match the session state."""
    start = session.last(InfusionStart)
    start_at = start.event.at if start is not None else None
    last = session.events[-1].event
    if session.state is SessionState.NOT_DONE:
        if not isinstance(last, NotDone):
            raise ValueError(f"session {session.id} is not-done without a final not-done event")
        return _Outcome(None, last.at, reason=last.reason)
    if start_at is None:
        raise ValueError(f"session {session.id} is {session.state} without an infusion-start")
    if session.state is SessionState.STOPPED:
        if isinstance(last, Stop):
            return _Outcome(start_at, last.at, last.reason, last.dose_given, last.volume_ml)
        if isinstance(last, Reaction) and last.action == "stopped":
            # Stopped by the reaction itself: no dose was recorded, the rate stands in (mad-1).
            reason = f"infusion-related reaction ({last.severity}): {', '.join(last.symptoms)}"
            return _Outcome(start_at, last.at, reason)
        raise ValueError(f"session {session.id} is stopped without a final stop event")
    ended = session.last(InfusionEnd)
    if ended is None or not isinstance(ended.event, InfusionEnd):
        raise ValueError(f"session {session.id} is discharged without an infusion-end event")
    return _Outcome(start_at, ended.event.at, None, ended.event.dose_given, ended.event.volume_ml)


def _infusion_notes(session: InfusionSession) -> list[str]:
    notes: list[str] = []
    for item in session.events:
        event = item.event
        if isinstance(event, Reaction):
            notes.append(f"{_clock(item)} {reaction_text(event)} (severity {event.severity})")
        elif isinstance(event, GateOverride):
            notes.append(
                f"{_clock(item)} Safety gate '{event.gate}' overridden by {event.by}: "
                f"{event.reason}"
            )
        elif isinstance(event, Discharge) and event.override_reason:
            notes.append(
                f"Discharged before the end of post-infusion observation: {event.override_reason}"
            )
        if isinstance(event, _INFUSION_EVENTS) and event.note:
            notes.append(f"{_clock(item)} {event.note}")
    return notes


def _rate_steps(session: InfusionSession, volume_ml: float | None) -> tuple[list[float], str]:
    """Pump rates in order (consecutive repeats merged) and the dosage text, e.g.
    ``30 mL/h -> 60 mL/h; paused 10:20-10:35; 250 mL infused``."""
    rates: list[float] = []
    pauses: list[str] = []
    paused_at: str | None = None
    for item in session.events:
        event = item.event
        rate = rate_from(event)
        if isinstance(event, Reaction) and event.action != "slowed":
            rate = None
        if rate is not None and (not rates or rates[-1] != rate):
            rates.append(rate)
        paused_now = isinstance(event, Pause) or (
            isinstance(event, Reaction) and event.action == "paused"
        )
        if paused_now and paused_at is None:
            paused_at = _clock(item)
        elif isinstance(event, Resume) and paused_at is not None:
            pauses.append(f"paused {paused_at}-{_clock(item)}")
            paused_at = None
    if paused_at is not None:
        pauses.append(f"paused from {paused_at}")
    parts = [" -> ".join(f"{fhir_number(r)} mL/h" for r in rates)] if rates else []
    parts += pauses
    if volume_ml is not None:
        parts.append(f"{fhir_number(volume_ml)} mL infused")
    return rates, "; ".join(parts)


def _medication(catalog: DrugCatalog, rxnorm: str, name: str) -> dict[str, Any]:
    """RxNorm coding (+ display when the catalog confirms it); text only for codes the
    catalog marks unverified (e.g. a placeholder code)."""
    known = catalog.rxnorm_code(rxnorm)
    if known is not None and not known.verified:
        return {"text": name}
    return rxnorm_concept(rxnorm, name, catalog)


def _route(route: str) -> dict[str, Any]:
    code = _ROUTES[route]
    return {"coding": [coding(codes.SNOMED, code, codes.ROUTE_DISPLAYS[code])]}


def _clock(item: RecordedEvent) -> str:
    return item.event.at.strftime("%H:%M")


def _unique(values: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen
