"""A finished :class:`InfusionSession` -> its write-back Bundle: one FHIR R4 transaction Bundle
sent to the EHR (pure, deterministic).

"Write-back Bundle" names this Bundle only: not the inbound order Bundles (batch/transaction of
MedicationRequests posted to ``/fhir``) nor the session's collection Bundle
(``GET /sessions/{id}/fhir``).

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
    <s>/touch/<e>            QuestionnaireResponse (natalizumab TOUCH checklist), with
    <url>|<version>          its Questionnaire (one for every session)

External references: ``order.patient`` (subject) and ``MedicationRequest/<id>`` (request).
Performers (``event.by``) are display-only References: the Practitioner may not exist.

The MedicationAdministrations are built in :mod:`fhir_mappings.medication_administration`, the
vital-sign Observations in :mod:`fhir_mappings.vital_signs`; this module adds the Encounter,
AdverseEvents and Procedures, the identifiers and the Bundle plumbing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from fhir_mappings import codes
from fhir_mappings.datatypes import coding, fhir_date_time
from fhir_mappings.medication_administration import (
    ADMINISTRATION_STATUS,
    infusion_administration,
    premedication_administration,
    reaction_text,
)
from fhir_mappings.touch_checklist import (
    TOUCH_QUESTIONNAIRE_URL,
    TOUCH_QUESTIONNAIRE_VERSION,
    touch_questionnaire,
    touch_response,
)
from fhir_mappings.vital_signs import vitals_observations
from services.infusion_bridge.domain.catalog import DrugCatalog
from services.infusion_bridge.domain.orders import InfusionOrder
from services.infusion_bridge.domain.session_events import (
    CheckIn,
    InfusionStart,
    IvInsertion,
    NotDone,
    Premedication,
    Reaction,
    TouchChecklist,
    Vitals,
)
from services.infusion_bridge.domain.sessions import InfusionSession, RecordedEvent

__all__ = ["writeback_bundle"]

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
_SAFE: Final = ":/|.-_~@"


def writeback_bundle(
    session: InfusionSession,
    order: InfusionOrder,
    catalog: DrugCatalog,
    *,
    identifier_system: str,
    premed_orders: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The write-back Bundle of a delivered session (discharged, stopped or not-done): the
    transaction Bundle that records it in the EHR.

    ``premed_orders``: premedication catalog key -> id of its cached MedicationRequest (sets
    ``request`` on that premedication's administration). Raises ValueError for any other
    session state, a session that is not for ``order``, or a timeline that lacks the events
    its final state implies (e.g. discharged without infusion start and end).
    """
    if session.state not in ADMINISTRATION_STATUS:
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
        self._add(
            "administration",
            infusion_administration(
                self.session,
                self.order,
                self.catalog,
                subject=self.subject,
                encounter=self.encounter,
            ),
        )
        for item in self.session.events:
            event = item.event
            if isinstance(event, Premedication):
                resource = premedication_administration(
                    event,
                    self.catalog,
                    self.premed_orders,
                    subject=self.subject,
                    encounter=self.encounter,
                )
                self._add(f"premed/{item.id}", resource)
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
        checklist = self.session.last(TouchChecklist)
        if checklist is not None and isinstance(checklist.event, TouchChecklist):
            self._add(
                f"{TOUCH_QUESTIONNAIRE_URL}|{TOUCH_QUESTIONNAIRE_VERSION}",
                touch_questionnaire(),
                shared=True,
            )
            self._add(f"touch/{checklist.id}", self._touch_response(checklist))
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}

    # -- bundle plumbing ---------------------------------------------------------------------

    def _value(self, part: str, *, shared: bool = False) -> str:
        return part if shared else f"{self.session.id}/{part}"

    def _urn(self, part: str, *, shared: bool = False) -> str:
        value = self._value(part, shared=shared)
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{self.system}|{value}')}"

    def _add(self, part: str, resource: dict[str, Any], *, shared: bool = False) -> None:
        """``shared``: one resource for every session (the TOUCH Questionnaire), identified by
        ``part`` alone."""
        value = self._value(part, shared=shared)
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
                "fullUrl": self._urn(part, shared=shared),
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

    def _adverse_event(self, item: RecordedEvent, event: Reaction) -> dict[str, Any]:
        text = reaction_text(event)
        if event.note:
            text += f"; note: {event.note}"
        concept: dict[str, Any] = {"text": text}
        coded = {SNOMED_VERIFIED_SYMPTOMS.get(s) for s in event.symptoms}
        # Only a single-concept reaction gets a code: codings of one CodeableConcept must all
        # mean the same thing, so "rash + itching" stays text.
        if len(coded) == 1 and None not in coded:
            code, display = next(iter(c for c in coded if c is not None))
            concept["coding"] = [coding(codes.SNOMED, code, display)]
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

    def _touch_response(self, item: RecordedEvent) -> dict[str, Any]:
        assert isinstance(item.event, TouchChecklist)
        infused = self.session.last(InfusionStart) is not None
        reason = None
        done = self.session.last(NotDone)
        if done is not None and isinstance(done.event, NotDone):
            reason = done.event.reason
        return touch_response(
            item.event,
            subject=self.subject,
            encounter=self.encounter,
            infused=infused,
            not_infused_reason=reason,
            authored=item.event.at,
        )

    def _iv_insertion(self, event: IvInsertion) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "resourceType": "Procedure",
            "status": "completed",
            "code": {
                "coding": [coding(codes.SNOMED, SNOMED_IV_CANNULATION)],
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


def _coded(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}
