"""Code system URIs and fixed codes used by the FHIR R4 mappings, in one place."""

from __future__ import annotations

from typing import Final

from services.infusion_bridge.domain.order_rules import (
    INTRAVENOUS_ROUTES as INTRAVENOUS_ROUTES,
)
from services.infusion_bridge.domain.order_rules import (
    PREMEDICATION_ROUTES as PREMEDICATION_ROUTES,
)
from services.infusion_bridge.domain.order_rules import (
    ROUTE_INTRAVENOUS as ROUTE_INTRAVENOUS,
)
from services.infusion_bridge.domain.order_rules import (
    ROUTE_INTRAVENOUS_ALT as ROUTE_INTRAVENOUS_ALT,
)
from services.infusion_bridge.domain.order_rules import ROUTE_ORAL as ROUTE_ORAL

# --- Code systems -------------------------------------------------------------------------------
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED: Final = "http://snomed.info/sct"
LOINC: Final = "http://loinc.org"
NDC: Final = "http://hl7.org/fhir/sid/ndc"
UCUM: Final = "http://unitsofmeasure.org"

MEDICATION_REQUEST_STATUS: Final = "http://hl7.org/fhir/CodeSystem/medicationrequest-status"
MEDICATION_REQUEST_INTENT: Final = "http://hl7.org/fhir/CodeSystem/medicationrequest-intent"
MEDICATION_ADMIN_STATUS: Final = "http://terminology.hl7.org/CodeSystem/medication-admin-status"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DOSE_RATE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# --- Value sets (R4 4.0.1, required bindings the fhir.resources models do not enforce) ----------
MEDICATION_REQUEST_STATUSES: Final = frozenset(
    {
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    }
)
MEDICATION_REQUEST_INTENTS: Final = frozenset(
    {
        "proposal",
        "plan",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    }
)
UNITS_OF_TIME: Final = frozenset({"s", "min", "h", "d", "wk", "mo", "a"})
"""R4 ``units-of-time`` (Timing.repeat.periodUnit / durationUnit)."""

# --- SNOMED CT routes ---------------------------------------------------------------------------
# The route code sets are the domain's (the order rules decide on them); re-exported here.
ROUTE_DISPLAYS: Final = {
    ROUTE_INTRAVENOUS: "Intravenous route",
    ROUTE_INTRAVENOUS_ALT: "Intravenous",
    ROUTE_ORAL: "Oral route",
}

# --- LOINC --------------------------------------------------------------------------------------
LOINC_BODY_SURFACE_AREA: Final = "8277-6"
LOINC_BODY_SURFACE_AREA_DISPLAY: Final = "Body surface area"

# --- SNOMED CT diagnoses ------------------------------------------------------------------------
SNOMED_MULTIPLE_SCLEROSIS: Final = "24700007"
SNOMED_RELAPSING_REMITTING_MS: Final = "426373005"
