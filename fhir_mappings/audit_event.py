"""Audit records as FHIR R4 ``AuditEvent`` resources, shaped after IHE Basic Audit Log
Patterns (BALP): a RESTful-operation event with the user (and client app) as agents, this
service as the source, and the patient and the resources touched as entities. Pure."""

from __future__ import annotations

from typing import Any

from services.infusion_bridge.domain.audit import AuditRecord

Json = dict[str, Any]
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
NETWORK_IP = "2"
SUBTYPES = {
    "create": "create",
    "read": "read",
    "vread": "vread",
    "history-instance": "history-instance",
    "search": "search",
    "update": "update",
    "delete": "delete",
    "transaction": "transaction",
    "execute": "operation",
}
FHIR_TYPES = {
    "MedicationRequest",
    "MedicationAdministration",
    "Observation",
    "Encounter",
    "AdverseEvent",
    "Procedure",
    "Patient",
    "AuditEvent",
}
"""Entities of these types are FHIR references; others (Session, Delivery) identifiers."""


def audit_event(record: AuditRecord, *, issuer: str, local_system: str) -> Json:
    """One ``AuditEvent``. ``issuer`` qualifies user ids (the identity provider);
    ``local_system`` prefixes identifiers of this service's own objects (sessions...)."""
    subtype = SUBTYPES.get(record.interaction, "operation")
    event: Json = {
        "resourceType": "AuditEvent",
        "id": str(record.id),
        "type": {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": RESTFUL_INTERACTION, "code": subtype}],
        "action": record.action,
        "recorded": record.recorded.isoformat(),
        "outcome": record.outcome,
        "agent": _agents(record, issuer),
        "source": {
            "site": "infusion-bridge",
            "observer": {"display": "Infusion Bridge"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    if record.reason or record.status:
        parts = [f"HTTP {record.status}" if record.status else "", record.reason or ""]
        event["outcomeDesc"] = " ".join(p for p in parts if p)
    entities = _entities(record, local_system)
    if entities:
        event["entity"] = entities
    return event


def _agents(record: AuditRecord, issuer: str) -> list[Json]:
    user: Json = {
        "type": {
            "coding": [
                {"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}
            ]
        },
        "requestor": True,
        "who": {"display": record.who or "anonymous"},
    }
    if record.subject:
        user["who"]["identifier"] = {"system": issuer, "value": record.subject}
    if record.roles:
        user["role"] = [{"text": role} for role in record.roles]
    if record.source:
        user["network"] = {"address": record.source, "type": NETWORK_IP}
    agents = [user]
    if record.client_id:
        agents.append(
            {
                "type": {"coding": [{"system": DICOM, "code": "110150", "display": "Application"}]},
                "requestor": False,
                "who": {"identifier": {"system": issuer, "value": record.client_id}},
            }
        )
    return agents


def _entities(record: AuditRecord, local_system: str) -> list[Json]:
    out: list[Json] = []
    patients = {record.patient} | {e.get("patient") for e in record.entities}
    for patient in sorted(p for p in patients if p):
        out.append(
            {
                "what": {"reference": patient},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    seen = set(patients)
    for entity in record.entities:
        kind, rid = entity.get("type"), entity.get("id")
        if not kind or not rid or f"{kind}/{rid}" in seen:
            continue
        seen.add(f"{kind}/{rid}")
        what: Json = (
            {"reference": f"{kind}/{rid}"}
            if kind in FHIR_TYPES
            else {"identifier": {"system": f"{local_system}:{kind.lower()}", "value": str(rid)}}
        )
        out.append(
            {
                "what": what,
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            }
        )
    if not out and record.resource_type:
        out.append({"type": {"system": ENTITY_TYPE, "code": "2"}, "name": record.resource_type})
    return out
