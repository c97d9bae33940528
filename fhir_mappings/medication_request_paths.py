"""Where things are in an R4 MedicationRequest: the FHIRPaths the order mapping reports, and the
translation of a domain rule violation (``InfusionOrder`` element) into one (pure).

The caller of :func:`fhir_mappings.medication_request.order_from_fhir` checks the order with
``services.infusion_bridge.domain.order_rules.check_order`` and reports what it finds as
``MappingError(violations_to_issues(violations))``: the same issues, at the same FHIRPaths, as
when the mapper itself enforced those rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from fhir_mappings.operation_outcome import Issue
from services.infusion_bridge.domain.order_rules import RuleViolation

__all__ = ["ORDER_ELEMENT_PATHS", "order_element_path", "violations_to_issues"]

MR: Final = "MedicationRequest"
DOSAGE: Final = f"{MR}.dosageInstruction[0]"
DOSE: Final = f"{DOSAGE}.doseAndRate[0].doseQuantity"
ROUTE: Final = f"{DOSAGE}.route"
TIMING: Final = f"{DOSAGE}.timing"
REPEAT: Final = f"{TIMING}.repeat"
MEDICATION: Final = f"{MR}.medication"
MEDICATION_CONCEPT: Final = f"{MR}.medicationCodeableConcept.coding"
MEDICATION_REFERENCE: Final = f"{MR}.medicationReference"

ORDER_ELEMENT_PATHS: Final[dict[str, str]] = {
    "id": f"{MR}.id",
    "version_id": f"{MR}.meta.versionId",
    "last_updated": f"{MR}.meta.lastUpdated",
    "status": f"{MR}.status",
    "intent": f"{MR}.intent",
    "patient": f"{MR}.subject",
    "drug": MEDICATION,
    "role": MEDICATION,
    "dose": DOSE,
    "body_surface_area_m2": f"{MR}.supportingInformation",
    "route_code": ROUTE,
    "route_display": ROUTE,
    "rate": f"{DOSAGE}.doseAndRate",
    "schedule": TIMING,
    "dosage_text": f"{DOSAGE}.text",
    "authored_on": f"{MR}.authoredOn",
    "requester": f"{MR}.requester",
    "reasons": f"{MR}.reasonCode",
    "notes": f"{MR}.note",
    "identifiers": f"{MR}.identifier",
    "group_identifier": f"{MR}.groupIdentifier",
    "based_on": f"{MR}.basedOn",
}
"""Top-level :class:`InfusionOrder` field -> the MedicationRequest element it is read from.

A dotted path (``dose.unit``, ``drug.rxnorm``) is reported at its top-level field's element:
``doseQuantity`` carries both the value and the unit, ``medication[x]`` the whole drug."""


def order_element_path(element: str) -> str:
    """The FHIRPath reported for a domain element path of :class:`InfusionOrder`
    (``route_code`` -> ``MedicationRequest.dosageInstruction[0].route``, ``dose.unit`` ->
    ``...doseAndRate[0].doseQuantity``); ``MedicationRequest`` for an unknown element."""
    return ORDER_ELEMENT_PATHS.get(element.split(".", 1)[0], MR)


def violations_to_issues(violations: Iterable[RuleViolation]) -> list[Issue]:
    """Rule violations as the issues of a :class:`~fhir_mappings.errors.MappingError`."""
    return [Issue(v.code, v.message, (order_element_path(v.element),)) for v in violations]
