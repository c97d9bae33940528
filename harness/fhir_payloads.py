"""Builders of realistic FHIR payloads for tests (pure data, no I/O)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

Json = dict[str, Any]

_OCRELIZUMAB: Json = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "identifier": [{"system": "urn:ehr:orders", "value": "ORD-1"}],
    "medicationCodeableConcept": {
        "coding": [{"system": RXNORM, "code": "1876366", "display": "ocrelizumab"}],
        "text": "Ocrevus 600 mg IV",
    },
    "subject": {"reference": "Patient/pat-1"},
    "authoredOn": "2026-11-01T09:00:00+00:00",
    "requester": {"reference": "Practitioner/neuro-1"},
    "reasonCode": [{"coding": [{"system": SNOMED, "code": "426373005"}], "text": "RRMS"}],
    "dosageInstruction": [
        {
            "text": "600 mg IV every 24 weeks",
            "timing": {"repeat": {"frequency": 1, "period": 24, "periodUnit": "wk"}},
            "route": {
                "coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]
            },
            "doseAndRate": [
                {
                    "doseQuantity": {"value": 600, "unit": "mg", "system": UCUM, "code": "mg"},
                    "rateQuantity": {"value": 40, "unit": "mL/h", "system": UCUM, "code": "mL/h"},
                }
            ],
        }
    ],
}


def medication_request(**overrides: Any) -> Json:
    """An ocrelizumab 600 mg IV order; top-level keys can be replaced (None removes one)."""
    body = copy.deepcopy(_OCRELIZUMAB)
    body["identifier"][0]["value"] = f"ORD-{uuid.uuid4().hex[:10]}"
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def premedication(
    infusion_ref: str,
    *,
    rxnorm: str = "3498",
    display: str = "diphenhydramine",
    dose_mg: float = 50,
    route: str = "47625008",
) -> Json:
    """A premedication order based on ``infusion_ref`` (a reference or urn:uuid)."""
    body = medication_request(
        medicationCodeableConcept={
            "coding": [{"system": RXNORM, "code": rxnorm, "display": display}]
        },
        basedOn=[{"reference": infusion_ref}],
    )
    dosage = body["dosageInstruction"][0]
    dosage["text"] = f"{display} {dose_mg} mg before the infusion"
    dosage["timing"] = {"repeat": {"count": 1}}
    dosage["route"] = {"coding": [{"system": SNOMED, "code": route}]}
    dosage["doseAndRate"] = [
        {"doseQuantity": {"value": dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}}
    ]
    return body


def dose(body: Json) -> Json:
    """The first doseQuantity of an order, for in-place edits."""
    quantity: Json = body["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    return quantity
