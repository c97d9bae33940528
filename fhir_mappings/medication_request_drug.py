"""Which catalogued drug a MedicationRequest orders (pure): ``medicationCodeableConcept``, a
contained Medication (``#id``) or a remote one (``Medication/<id>``, passed in by the caller).

The drug is the first RxNorm or NDC coding the catalog knows (and has verified), in order: the
Medication code, then each ingredient (diluents such as sodium chloride are simply not in the
catalog). NDC lets orders in for a drug whose RxNorm code is not verified (Briumvi).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from fhir.resources.R4B.medication import Medication

from fhir_mappings import codes
from fhir_mappings.errors import MappingError
from fhir_mappings.medication_request_paths import (
    MEDICATION,
    MEDICATION_CONCEPT,
    MEDICATION_REFERENCE,
    MR,
)
from fhir_mappings.reading import IssueLog, parse_model
from services.infusion_bridge.domain.catalog import DrugCatalog, DrugEntry

__all__ = ["Contained", "FoundDrug", "based_on_request", "read_drug"]

FoundDrug = tuple[DrugEntry, str, Literal["rxnorm", "ndc"]]
"""The catalog entry, the code that identified it, and that code's system."""

Contained = Mapping[str, tuple[int, Any]]
"""Contained resources by ``id`` -> (index in ``contained``, the R4B model)."""

_MEDICATION_REQUEST_REF: Final = re.compile(r"(?:^|/)MedicationRequest/[A-Za-z0-9\-.]{1,64}")
_MEDICATION_TAIL: Final = re.compile(r"(Medication/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def read_drug(
    model: Any,
    contained: Contained,
    catalog: DrugCatalog,
    medications: Mapping[str, Mapping[str, Any]] | None,
    log: IssueLog,
) -> FoundDrug | None:
    """The catalog entry and the code that identified it, or None (with an issue)."""
    if model.medicationCodeableConcept is not None:
        return _from_concepts([model.medicationCodeableConcept], MEDICATION_CONCEPT, catalog, log)
    ref = model.medicationReference
    if ref is None:
        log.add("required", "a medication is required", MEDICATION)
        return None
    reference = ref.reference
    if not reference:
        log.add(
            "required",
            "medicationReference has no reference (a display alone cannot be mapped)",
            MEDICATION_REFERENCE,
        )
        return None
    if reference.startswith("#"):
        found = contained.get(reference[1:])
        if found is None or found[1].get_resource_type() != "Medication":
            log.add(
                "not-found",
                f"medicationReference {reference!r} names no contained Medication",
                MEDICATION_REFERENCE,
            )
            return None
        medication = found[1]
    else:
        medication = _remote_medication(reference, medications, log)
        if medication is None:
            return None
    concepts = [medication.code] if medication.code is not None else []
    concepts += [
        i.itemCodeableConcept
        for i in medication.ingredient or ()
        if i.itemCodeableConcept is not None
    ]
    return _from_concepts(concepts, MEDICATION_REFERENCE, catalog, log)


def based_on_request(model: Any) -> bool:
    """Whether the order is based on another MedicationRequest (a premedication's infusion)."""
    return any(
        r.reference and (r.type == MR or _MEDICATION_REQUEST_REF.search(r.reference) is not None)
        for r in model.basedOn or ()
    )


def _remote_medication(
    reference: str, medications: Mapping[str, Mapping[str, Any]] | None, log: IssueLog
) -> Any:
    data = _lookup(reference, medications)
    if data is None:
        log.add(
            "not-found",
            f"medicationReference {reference!r} was not resolved: pass the Medication "
            "resource in `medications`",
            MEDICATION_REFERENCE,
        )
        return None
    if data.get("resourceType") != "Medication":
        log.add(
            "invalid",
            f"{reference!r} resolved to a {data.get('resourceType')!r}, not a Medication",
            MEDICATION_REFERENCE,
        )
        return None
    try:
        return parse_model(Medication, data, "Medication")
    except MappingError as exc:
        log.extend(exc.issues)
        return None


def _lookup(
    reference: str, medications: Mapping[str, Mapping[str, Any]] | None
) -> Mapping[str, Any] | None:
    if not medications:
        return None
    data = medications.get(reference)
    if data is None:
        tail = _MEDICATION_TAIL.search(reference)
        if tail is not None:
            data = medications.get(tail.group(1))
    return data


def _from_concepts(
    concepts: list[Any], expression: str, catalog: DrugCatalog, log: IssueLog
) -> FoundDrug | None:
    seen: list[str] = []
    for concept in concepts:
        for coding in concept.coding or ():
            if not coding.code:
                continue
            if coding.system == codes.RXNORM:
                entry = catalog.by_rxnorm(coding.code)
                if entry is not None:
                    return entry, str(coding.code), "rxnorm"
                seen.append(f"RxNorm {coding.code}")
            elif coding.system == codes.NDC:
                entry = catalog.by_ndc(coding.code)
                if entry is not None:
                    return entry, str(coding.code), "ndc"
                seen.append(f"NDC {coding.code}")
    if seen:
        log.add("code-invalid", f"code(s) {', '.join(seen)} not in the drug catalog", expression)
    else:
        log.add(
            "code-invalid",
            f"no RxNorm ({codes.RXNORM}) or NDC ({codes.NDC}) coding identifies the drug",
            expression,
        )
    return None
