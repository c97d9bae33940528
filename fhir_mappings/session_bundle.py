"""A finished :class:`InfusionSession` -> one FHIR R4 transaction Bundle (pure, deterministic).

The Bundle holds the visit (Encounter), the infusion MedicationAdministration, one
MedicationAdministration per premedication, the vital-sign Observations, one AdverseEvent per
reaction and one Procedure per IV insertion. Every resource carries a business identifier
``{identifier_system}|{session.id}/<part>`` and is written with a conditional create on it
(``request.ifNoneExist: identifier=<system>|<value>``; AdverseEvent, which has no identifier
search parameter in R4, also carries the pair as ``meta.tag`` and is matched on ``_tag``);
``fullUrl`` is ``urn:uuid:<uuid5 of that identifier>``. Nothing depends on the clock or
randomness, so a retried delivery produces the identical Bundle and the server creates nothing
twice (domain.md section 5).

Identifier values (``<s>`` = session id, ``<e>`` = recorded event id)::

    <s>/encounter            Encounter
    <s>/administration       the infusion MedicationAdministration
    <s>/premed/<e>           premedication MedicationAdministration
    <s>/vitals/<e>/<loinc>   vital-sign Observation, <loinc> = 85354-9 (BP), 8867-4, 9279-1,
                             8310-5, 2708-6 or 29463-7
    <s>/reaction/<e>         AdverseEvent
    <s>/iv/<e>               Procedure (peripheral IV cannulation)

External references: ``order.patient`` (subject) and ``MedicationRequest/<id>`` (request).
Performers (``event.by``) are display-only References: the Practitioner may not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from fhir_mappings import codes
from fhir_mappings.vital_signs import (
    fhir_date_time,
    fhir_number,
    ucum_quantity,
    vitals_observations,
)
from services.infusion_bridge.domain.catalog import DrugCatalog
from services.infusion_bridge.domain.orders import InfusionOrder, Quantity
from services.infusion_bridge.domain.sessions import (
    CheckIn,
    Discharge,
    InfusionEnd,
    InfusionSession,
    InfusionStart,
    IvInsertion,
    NotDone,
    Pause,
    Premedication,
    RateChange,
    Reaction,
    RecordedEvent,
    Resume,
    SessionState,
    Stop,
    Vitals,
    rate_from,
)

__all__ = ["session_to_bundle"]

# New codes (fhir_mappings/codes.py belongs to the order mapping; these are ours).
ADVERSE_EVENT_SERIOUSNESS: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
ADVERSE_EVENT_SEVERITY: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
SNOMED_IV_CANNULATION: Final = "392231009"
"""Labelled "IV insertion" / venous cannulation in HL7 IGs; no display: the FSN is unverified."""
SNOMED_VERIFIED_SYMPTOMS: Final = {
    "itching": ("418363000", "Itching"),
    "rash": ("271807003", "Eruption of skin"),
}
"""Reaction symptoms with a verified SNOMED CT concept (domain.md section 3.3)."""
ENCOUNTER_TYPE_TEXT: Final = "MS infusion"
_ROUTES: Final = {"intravenous": codes.ROUTE_INTRAVENOUS, "oral": codes.ROUTE_ORAL}
_MA_STATUS: Final = {
    SessionState.DISCHARGED: "completed",
    SessionState.STOPPED: "stopped",
    SessionState.NOT_DONE: "not-done",
}
_INFUSION_EVENTS: Final = (InfusionStart, RateChange, Pause, Resume, InfusionEnd, Stop, NotDone)


def session_to_bundle(
    session: InfusionSession,
    order: InfusionOrder,
    catalog: DrugCatalog,
    *,
    identifier_system: str,
    premed_orders: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Map a delivered session (discharged, stopped or not-done) to a transaction Bundle.

    ``premed_orders``: premedication catalog key -> id of its cached MedicationRequest (sets
    ``request`` on that premedication's administration). Raises ValueError for any other
    session state, a session that is not for ``order``, or a timeline that lacks the events
    its final state implies (e.g. discharged without infusion start and end).
    """
    if session.state not in _MA_STATUS:
        raise ValueError(
            f"session {session.id} is {session.state}: only discharged, stopped and not-done "
            "sessions are sent to the EHR"
        )
    if session.order_id != order.id:
        raise ValueError(f"session {session.id} is for order {session.order_id}, not {order.id}")
    if session.patient not in (order.patient, order.patient.rsplit("/", 1)[-1]):
        raise ValueError(
            f"session {session.id} is for patient {session.patient}, order {order.id} "
            f"for {order.patient}"
        )
    if not session.events:
        raise ValueError(f"session {session.id} has no events")
    return _Builder(session, order, catalog, identifier_system, premed_orders or {}).build()


class _Builder:
    def __init__(
        self,
        session: InfusionSession,
        order: InfusionOrder,
        catalog: DrugCatalog,
        system: str,
        premed_orders: Mapping[str, str],
    ) -> None:
        self.session = session
        self.order = order
        self.catalog = catalog
        self.system = system
        self.premed_orders = premed_orders
        self.entries: list[dict[str, Any]] = []
        self.subject = order.patient
        self.encounter = self._urn("encounter")
        self.administration = self._urn("administration")

    def build(self) -> dict[str, Any]:
        self._add("encounter", self._encounter())
        self._add("administration", self._infusion())
        for item in self.session.events:
            event = item.event
            if isinstance(event, Premedication):
                self._add(f"premed/{item.id}", self._premedication(event))
            elif isinstance(event, IvInsertion):
                self._add(f"iv/{item.id}", self._iv_insertion(event))
            elif isinstance(event, Vitals):
                for code, resource in vitals_observations(
                    event,
                    subject=self.subject,
                    encounter=self.encounter,
                    part_of=self.administration,
                ):
                    self._add(f"vitals/{item.id}/{code}", resource)
            elif isinstance(event, Reaction):
                self._add(f"reaction/{item.id}", self._adverse_event(item, event))
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}

    # -- bundle plumbing ---------------------------------------------------------------------

    def _value(self, part: str) -> str:
        return f"{self.session.id}/{part}"

    def _urn(self, part: str) -> str:
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{self.system}|{self._value(part)}')}"

    def _add(self, part: str, resource: dict[str, Any]) -> None:
        value = self._value(part)
        kind = resource["resourceType"]
        identifier = {"system": self.system, "value": value}
        token = f"{quote(self.system, safe=_SAFE)}|{quote(value, safe=_SAFE)}"
        body: dict[str, Any] = {"resourceType": kind}
        if kind == "AdverseEvent":
            # R4 AdverseEvent: identifier is 0..1 and there is no `identifier` search parameter
            # (HAPI-0524), so the conditional create matches a meta.tag carrying the same token.
            body["meta"] = {"tag": [{"system": self.system, "code": value}]}
            body["identifier"] = identifier
            condition = f"_tag={token}"
        else:
            body["identifier"] = [identifier]
            condition = f"identifier={token}"
        for key, item in resource.items():
            if key == "meta":
                body.setdefault("meta", {}).update(item)
            elif key != "resourceType":
                body[key] = item
        self.entries.append(
            {
                "fullUrl": self._urn(part),
                "resource": body,
                "request": {"method": "POST", "url": kind, "ifNoneExist": condition},
            }
        )

    # -- resources ---------------------------------------------------------------------------

    def _encounter(self) -> dict[str, Any]:
        events = self.session.events
        arrived = any(isinstance(i.event, CheckIn) for i in events)
        return {
            "resourceType": "Encounter",
            # A not-done session closed before check-in: the patient never came.
            "status": "finished" if arrived else "cancelled",
            "class": {"system": codes.V3_ACT_CODE, "code": "AMB", "display": "ambulatory"},
            "type": [{"text": ENCOUNTER_TYPE_TEXT}],
            "subject": {"reference": self.subject},
            "period": {
                "start": fhir_date_time(events[0].event.at),
                "end": fhir_date_time(events[-1].event.at),
            },
        }

    def _infusion(self) -> dict[str, Any]:
        s = self.session
        resource: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "status": _MA_STATUS[s.state],
        }
        outcome = _outcome(s)
        if outcome.reason:
            resource["statusReason"] = [{"text": outcome.reason}]
        resource["medicationCodeableConcept"] = self._medication(
            self.order.drug.rxnorm, self.order.drug.name
        )
        resource["subject"] = {"reference": self.subject}
        resource["context"] = {"reference": self.encounter}
        if outcome.start is None:
            resource["effectiveDateTime"] = fhir_date_time(outcome.end)
        else:
            resource["effectivePeriod"] = {
                "start": fhir_date_time(outcome.start),
                "end": fhir_date_time(outcome.end),
            }
        performers = _unique(i.event.by for i in s.events if isinstance(i.event, _INFUSION_EVENTS))
        if performers:
            resource["performer"] = [{"actor": {"display": by}} for by in performers]
        resource["request"] = {"reference": f"MedicationRequest/{self.order.id}"}
        notes = self._infusion_notes()
        if notes:
            resource["note"] = [{"text": n} for n in notes]
        if outcome.start is not None:
            rates, text = _rate_steps(s, outcome.volume_ml)
            dosage: dict[str, Any] = {"text": text} if text else {}
            dosage["route"] = _route("intravenous")
            if outcome.dose is not None:
                dosage["dose"] = _dose(outcome.dose)
            dosage["rateQuantity"] = ucum_quantity(rates[-1], "mL/h")
            resource["dosage"] = dosage
        # not-done: no dosage (mad-1 needs a dose or a rate, and nothing was given).
        return resource

    def _infusion_notes(self) -> list[str]:
        notes: list[str] = []
        for item in self.session.events:
            event = item.event
            if isinstance(event, Reaction):
                notes.append(f"{_clock(item)} {_reaction_text(event)} (severity {event.severity})")
            elif isinstance(event, Discharge) and event.override_reason:
                notes.append(
                    f"Discharged before the end of post-infusion observation: "
                    f"{event.override_reason}"
                )
            if isinstance(event, _INFUSION_EVENTS) and event.note:
                notes.append(f"{_clock(item)} {event.note}")
        return notes

    def _premedication(self, event: Premedication) -> dict[str, Any]:
        entry = self.catalog.by_key(event.drug) or self.catalog.by_rxnorm(event.drug)
        if entry is None:
            medication: dict[str, Any] = {"text": event.drug}
            request = self.premed_orders.get(event.drug)
        else:
            code = event.drug if event.drug in entry.codes else entry.ingredient_code
            medication = self._medication(code, entry.name)
            request = self.premed_orders.get(entry.key, self.premed_orders.get(event.drug))
        resource: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": medication,
            "subject": {"reference": self.subject},
            "context": {"reference": self.encounter},
            "effectiveDateTime": fhir_date_time(event.at),
        }
        if event.by:
            resource["performer"] = [{"actor": {"display": event.by}}]
        if request:
            resource["request"] = {"reference": f"MedicationRequest/{request}"}
        if event.note:
            resource["note"] = [{"text": event.note}]
        resource["dosage"] = {"route": _route(event.route), "dose": _dose(event.dose)}
        return resource

    def _adverse_event(self, item: RecordedEvent, event: Reaction) -> dict[str, Any]:
        text = _reaction_text(event)
        if event.note:
            text += f"; note: {event.note}"
        concept: dict[str, Any] = {"text": text}
        coded = {SNOMED_VERIFIED_SYMPTOMS.get(s) for s in event.symptoms}
        # Only a single-concept reaction gets a code: codings of one CodeableConcept must all
        # mean the same thing, so "rash + itching" stays text.
        if len(coded) == 1 and None not in coded:
            code, display = next(iter(c for c in coded if c is not None))
            concept["coding"] = [{"system": codes.SNOMED, "code": code, "display": display}]
        serious = event.severity in ("severe", "life-threatening")
        severity = "severe" if event.severity == "life-threatening" else event.severity
        resource: dict[str, Any] = {
            "resourceType": "AdverseEvent",
            "actuality": "actual",
            "event": concept,
            "subject": {"reference": self.subject},
            "encounter": {"reference": self.encounter},
            "date": fhir_date_time(event.at),
            "recordedDate": fhir_date_time(item.recorded_at),
        }
        if event.by:
            resource["recorder"] = {"display": event.by}
        resource["seriousness"] = _coded(
            ADVERSE_EVENT_SERIOUSNESS,
            "Serious" if serious else "Non-serious",  # case-sensitive R4 codes
            "Serious" if serious else "Non-serious",
        )
        resource["severity"] = _coded(ADVERSE_EVENT_SEVERITY, severity, severity.capitalize())
        resource["suspectEntity"] = [{"instance": {"reference": self.administration}}]
        return resource

    def _iv_insertion(self, event: IvInsertion) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "resourceType": "Procedure",
            "status": "completed",
            "code": {
                "coding": [{"system": codes.SNOMED, "code": SNOMED_IV_CANNULATION}],
                "text": "Peripheral IV cannulation",
            },
            "subject": {"reference": self.subject},
            "encounter": {"reference": self.encounter},
            "performedDateTime": fhir_date_time(event.at),
        }
        if event.by:
            resource["performer"] = [{"actor": {"display": event.by}}]
        resource["bodySite"] = [{"text": event.site}]
        notes = [f"{event.gauge} G peripheral IV catheter"]
        if event.note:
            notes.append(event.note)
        resource["note"] = [{"text": n} for n in notes]
        return resource

    def _medication(self, rxnorm: str, name: str) -> dict[str, Any]:
        """RxNorm coding (+ display when the catalog confirms it); text only for codes the
        catalog marks unverified (e.g. a placeholder code)."""
        known = self.catalog.rxnorm_code(rxnorm)
        if known is not None and not known.verified:
            return {"text": name}
        coding: dict[str, Any] = {"system": codes.RXNORM, "code": rxnorm}
        if known is not None and known.display:
            coding["display"] = known.display
        return {"coding": [coding], "text": name}


_SAFE: Final = ":/|.-_~@"


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


def _reaction_text(event: Reaction) -> str:
    action: str = event.action
    if event.action == "slowed" and event.rate_ml_per_h is not None:
        action += f" to {fhir_number(event.rate_ml_per_h)} mL/h"
    text = f"Infusion-related reaction: {', '.join(event.symptoms)}; action: {action}"
    if event.treatment:
        text += f"; treatment: {event.treatment}"
    return text


def _clock(item: RecordedEvent) -> str:
    return item.event.at.strftime("%H:%M")


def _route(route: str) -> dict[str, Any]:
    code = _ROUTES[route]
    return {
        "coding": [{"system": codes.SNOMED, "code": code, "display": codes.ROUTE_DISPLAYS[code]}]
    }


def _dose(quantity: Quantity) -> dict[str, Any]:
    return ucum_quantity(quantity.value, quantity.unit)


def _coded(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _unique(values: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen
