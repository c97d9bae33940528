"""Small FHIR R4 JSON datatype builders shared by the mappings (pure: no I/O, no clock).

Numbers, UCUM Quantities, ``dateTime`` strings, Codings and the RxNorm CodeableConcept of a
drug, written the same way by every resource this package renders.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_mappings import codes
from services.infusion_bridge.domain.catalog import DrugCatalog
from services.infusion_bridge.domain.orders import Drug, Quantity

__all__ = [
    "coding",
    "drug_concept",
    "fhir_date_time",
    "fhir_number",
    "quantity_to_fhir",
    "rxnorm_concept",
    "ucum_quantity",
]


def fhir_number(value: float) -> int | float:
    """``600.0`` -> ``600`` so JSON output stays stable and readable."""
    if float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def ucum_quantity(value: float, code: str, *, unit: str | None = None) -> dict[str, Any]:
    """A UCUM Quantity: value, human unit, system and (case-sensitive) code."""
    return {
        "value": fhir_number(value),
        "unit": unit if unit is not None else code,
        "system": codes.UCUM,
        "code": code,
    }


def quantity_to_fhir(quantity: Quantity) -> dict[str, Any]:
    """A domain :class:`Quantity` (its ``unit`` is a UCUM code) as a UCUM Quantity."""
    return ucum_quantity(quantity.value, quantity.unit)


def fhir_date_time(value: datetime) -> str:
    """A FHIR dateTime with its offset; naive datetimes are refused (no guessing a zone)."""
    if value.utcoffset() is None:
        raise ValueError(f"datetime {value.isoformat()} has no timezone offset")
    return value.isoformat()


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    """A Coding; ``display`` only when given."""
    out: dict[str, Any] = {"system": system, "code": code}
    if display is not None:
        out["display"] = display
    return out


def drug_concept(drug: Drug, catalog: DrugCatalog) -> dict[str, Any]:
    """An ordered drug's CodeableConcept: the code the EHR sent (RxNorm or NDC, never a code
    the catalog marks unverified) and the drug's name as text."""
    if drug.ndc is not None:
        return {"coding": [coding(codes.NDC, drug.ndc)], "text": drug.name}
    known = catalog.rxnorm_code(drug.rxnorm) if drug.rxnorm else None
    if drug.rxnorm is None or (known is not None and not known.verified):
        return {"text": drug.name}
    return rxnorm_concept(drug.rxnorm, drug.name, catalog)


def rxnorm_concept(rxnorm: str, name: str, catalog: DrugCatalog) -> dict[str, Any]:
    """A drug's CodeableConcept: its RxNorm coding (with the ``display`` the catalog confirms,
    if any) and ``name`` as text."""
    known = catalog.rxnorm_code(rxnorm)
    display = (known.display or None) if known is not None else None
    return {"coding": [coding(codes.RXNORM, rxnorm, display)], "text": name}
