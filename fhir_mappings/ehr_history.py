"""EHR resources -> what the service keeps of a patient's history (pure): earlier
``MedicationAdministration``s of catalog drugs, body-measurement ``Observation``s (weight,
height, body surface area, LVEF) and the ``Patient``'s name and birth date.

Each reader returns None for a resource it cannot use (not valid R4, not a catalog drug, no
date, no value): an EHR's history is read as evidence, never refused. Resources this service
wrote back itself (they carry its identifier system) are left out by the caller's
``own_system``, so a dose charted here is not counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from fhir_mappings import codes
from fhir_mappings.errors import MappingError
from fhir_mappings.reading import parse_model, to_datetime, to_float
from services.infusion_bridge.domain.catalog import DrugCatalog
from services.infusion_bridge.domain.ehr_records import (
    BodyMeasurement,
    EhrAdministration,
    MeasurementKind,
    PatientDetails,
)
from services.infusion_bridge.domain.orders import Quantity

__all__ = [
    "LOINC_MEASUREMENTS",
    "administration_from_fhir",
    "administration_search_codes",
    "measurement_from_fhir",
    "patient_from_fhir",
    "written_by",
]

Json = Mapping[str, Any]

LOINC_MEASUREMENTS: Final[dict[str, MeasurementKind]] = {
    "29463-7": "weight",  # Body weight (domain.md §2)
    "8302-2": "height",  # Body height (domain.md §2)
    "8277-6": "bsa",  # Body surface area (domain.md §2)
    "10230-1": "lvef",  # Left ventricular Ejection fraction
    "18043-0": "lvef",  # LVEF by US (DICOM CID 12202)
    "8808-8": "lvef",  # LVEF by angiography (DICOM CID 3467)
    "8810-4": "lvef",  # LVEF by CT (DICOM CID 3833)
    "8811-2": "lvef",  # LVEF by MR (DICOM CID 3833)
}
"""LOINC codes read as body measurements. The LVEF codes come from public FHIR profiles and the
DICOM terminology value sets (napkon-cardiology, DICOM CID 3467/3833/12202)."""

_UNITS: Final[dict[MeasurementKind, dict[str, tuple[str, float]]]] = {
    "weight": {"kg": ("kg", 1), "g": ("kg", 0.001), "[lb_av]": ("kg", 0.45359237)},
    "height": {"cm": ("cm", 1), "m": ("cm", 100), "[in_i]": ("cm", 2.54)},
    "bsa": {"m2": ("m2", 1)},
    "lvef": {"%": ("%", 1)},
}
"""Accepted UCUM codes per measurement and how to convert them to the one unit kept."""

_COUNTED_STATUSES: Final = frozenset({"completed", "stopped", "in-progress", "on-hold"})


def written_by(resource: Json, system: str) -> bool:
    """Whether ``resource`` carries a business identifier of ``system`` (ours: written back)."""
    identifiers = resource.get("identifier")
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    return any(isinstance(i, dict) and i.get("system") == system for i in identifiers or ()) or any(
        isinstance(t, dict) and t.get("system") == system
        for t in (resource.get("meta") or {}).get("tag") or ()
    )


def administration_search_codes(catalog: DrugCatalog) -> str:
    """The ``code`` search value for every verified code of the catalog's infusion drugs
    (``system|code`` joined by commas: an OR)."""
    tokens: list[str] = []
    for entry in catalog.drugs:
        if entry.drug_class == "premedication":
            continue
        tokens += [f"{codes.RXNORM}|{c.code}" for c in entry.rxnorm if c.verified]
        tokens += [f"{codes.NDC}|{n.code}" for n in entry.ndc if n.verified]
    return ",".join(tokens)


def administration_from_fhir(resource: Json, catalog: DrugCatalog) -> EhrAdministration | None:
    """A MedicationAdministration of a catalog infusion drug, or None."""
    try:
        model = parse_model(MedicationAdministration, resource, "MedicationAdministration")
    except MappingError:
        return None
    if model.status not in _COUNTED_STATUSES or not model.id or model.subject is None:
        return None
    entry = None
    concept = model.medicationCodeableConcept
    for coding in (concept.coding or ()) if concept is not None else ():
        if coding.system == codes.RXNORM and coding.code:
            entry = catalog.by_rxnorm(coding.code)
        elif coding.system == codes.NDC and coding.code:
            entry = catalog.by_ndc(coding.code)
        if entry is not None:
            break
    if entry is None or entry.drug_class == "premedication":
        return None
    period = model.effectivePeriod
    start = to_datetime(period.start if period is not None else model.effectiveDateTime)
    if start is None:
        return None
    end = to_datetime(period.end) if period is not None else None
    dose = None
    given = model.dosage.dose if model.dosage is not None else None
    if given is not None and given.value is not None and (given.code or given.unit):
        dose = Quantity(value=float(given.value), unit=str(given.code or given.unit))
    request = model.request.reference if model.request is not None else None
    return EhrAdministration(
        resource_id=model.id,
        version_id=model.meta.versionId if model.meta is not None else None,
        patient=str(model.subject.reference or ""),
        drug_key=entry.key,
        status=model.status,
        given_at=start,
        ended_at=end,
        dose=dose,
        order_id=request.rsplit("/", 1)[-1]
        if request and "MedicationRequest/" in request
        else None,
    )


def measurement_from_fhir(resource: Json) -> BodyMeasurement | None:
    """A final body weight, height, body surface area or LVEF Observation, or None."""
    try:
        model = parse_model(Observation, resource, "Observation")
    except MappingError:
        return None
    if model.status not in ("final", "amended", "corrected") or not model.id:
        return None
    kind = _kind(model.code.coding or ())
    quantity = model.valueQuantity
    if kind is None or quantity is None or quantity.value is None or model.subject is None:
        return None
    unit = _UNITS[kind].get(str(quantity.code or quantity.unit or ""))
    effective = to_datetime(
        model.effectiveDateTime
        or (model.effectivePeriod.start if model.effectivePeriod is not None else None)
        or model.effectiveInstant
    )
    value = to_float(quantity.value)
    if unit is None or effective is None or value is None or value <= 0:
        return None
    return BodyMeasurement(
        resource_id=model.id,
        version_id=model.meta.versionId if model.meta is not None else None,
        patient=str(model.subject.reference or ""),
        kind=kind,
        value=round(value * unit[1], 4),
        unit=unit[0],
        effective=effective,
    )


def patient_from_fhir(resource: Json, patient: str) -> PatientDetails | None:
    """The patient's usual (or first) name and birth date, or None."""
    try:
        model = parse_model(Patient, resource, "Patient")
    except MappingError:
        return None
    names = list(model.name or ())
    chosen = next((n for n in names if n.use == "official"), names[0] if names else None)
    name = None
    if chosen is not None:
        name = chosen.text or " ".join([*(chosen.given or ()), chosen.family or ""]).strip()
    return PatientDetails(patient=patient, name=name or None, birth_date=model.birthDate)


def _kind(codings: Iterable[Any]) -> MeasurementKind | None:
    for coding in codings:
        if coding.system == codes.LOINC and coding.code in LOINC_MEASUREMENTS:
            return LOINC_MEASUREMENTS[coding.code]
    return None
