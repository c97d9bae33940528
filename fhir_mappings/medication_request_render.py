""":class:`InfusionOrder` -> FHIR R4 MedicationRequest (pure: no I/O, no clock).

:func:`order_to_fhir` renders a valid R4 MedicationRequest; for every valid order
``order_from_fhir(order_to_fhir(order), catalog) == order`` (reading:
:mod:`fhir_mappings.medication_request`).

Date/time conventions (the inverse of reading): naive datetimes are rendered as UTC, and a
``dateTime`` at exactly midnight UTC is written as a date. ``Schedule.day_offsets`` become
``Timing.event`` dates counted from ``Schedule.bounds_start``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fhir_mappings import codes
from fhir_mappings.datatypes import (
    coding,
    drug_concept,
    fhir_date_time,
    fhir_number,
    quantity_to_fhir,
    ucum_quantity,
)
from services.infusion_bridge.domain.catalog import DrugCatalog, load_catalog
from services.infusion_bridge.domain.orders import Identifier, InfusionOrder, Schedule

__all__ = ["BSA_CONTAINED_ID", "order_to_fhir"]

BSA_CONTAINED_ID: Final = "bsa"
"""``id`` of the contained body-surface-area Observation that :func:`order_to_fhir` writes."""

_REFERENCE_LIKE = re.compile(
    r"^(?:#\S*|urn:\S+|[a-z][a-z0-9+.-]*://\S+|[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?)$"
)


def order_to_fhir(order: InfusionOrder, catalog: DrugCatalog | None = None) -> dict[str, Any]:
    """Render an order as an R4 MedicationRequest (JSON-ready dict).

    ``catalog`` (default: the bundled one) only supplies the RxNorm ``display``.
    Raises ValueError for a schedule with ``day_offsets`` but no ``bounds_start``.
    """
    catalog = catalog if catalog is not None else load_catalog()
    resource: dict[str, Any] = {"resourceType": "MedicationRequest", "id": order.id}

    meta: dict[str, Any] = {}
    if order.version_id is not None:
        meta["versionId"] = str(order.version_id)
    if order.last_updated is not None:
        meta["lastUpdated"] = _instant(order.last_updated)
    if meta:
        resource["meta"] = meta
    if order.body_surface_area_m2 is not None:
        resource["contained"] = [_bsa_observation(order.patient, order.body_surface_area_m2)]
    if order.identifiers:
        resource["identifier"] = [_identifier(i) for i in order.identifiers]
    if order.based_on:
        resource["basedOn"] = [{"reference": r} for r in order.based_on]
    if order.group_identifier is not None:
        resource["groupIdentifier"] = _identifier(order.group_identifier)
    resource["status"] = order.status.value
    resource["intent"] = order.intent.value
    resource["medicationCodeableConcept"] = drug_concept(order.drug, catalog)
    resource["subject"] = {"reference": order.patient}
    if order.authored_on is not None:
        resource["authoredOn"] = _date_time(order.authored_on)
    if order.requester is not None:
        resource["requester"] = {"reference": order.requester}

    reason_codes = [{"text": r} for r in order.reasons if not _REFERENCE_LIKE.match(r)]
    reason_refs = [{"reference": r} for r in order.reasons if _REFERENCE_LIKE.match(r)]
    if reason_codes:
        resource["reasonCode"] = reason_codes
    if reason_refs:
        resource["reasonReference"] = reason_refs
    if order.body_surface_area_m2 is not None:
        resource["supportingInformation"] = [{"reference": f"#{BSA_CONTAINED_ID}"}]
    if order.notes:
        resource["note"] = [{"text": n} for n in order.notes]
    resource["dosageInstruction"] = [_dosage(order)]
    return resource


def _dosage(order: InfusionOrder) -> dict[str, Any]:
    dosage: dict[str, Any] = {}
    if order.dosage_text is not None:
        dosage["text"] = order.dosage_text
    if order.schedule is not None:
        timing = _timing(order.schedule)
        if timing:
            dosage["timing"] = timing
    if order.route_code is not None:
        dosage["route"] = {"coding": [coding(codes.SNOMED, order.route_code, order.route_display)]}
    elif order.route_display is not None:
        dosage["route"] = {"text": order.route_display}
    and_rate: dict[str, Any] = {"doseQuantity": quantity_to_fhir(order.dose)}
    if order.rate is not None:
        if order.rate.denominator is None:
            and_rate["rateQuantity"] = quantity_to_fhir(order.rate.numerator)
        else:
            and_rate["rateRatio"] = {
                "numerator": quantity_to_fhir(order.rate.numerator),
                "denominator": quantity_to_fhir(order.rate.denominator),
            }
    dosage["doseAndRate"] = [and_rate]
    return dosage


def _timing(schedule: Schedule) -> dict[str, Any]:
    timing: dict[str, Any] = {}
    if schedule.day_offsets:
        anchor = schedule.bounds_start
        if anchor is None:
            raise ValueError("Schedule.day_offsets need Schedule.bounds_start (the day-0 date)")
        timing["event"] = [_date_time(anchor + timedelta(days=d)) for d in schedule.day_offsets]
    repeat: dict[str, Any] = {}
    if schedule.bounds_start is not None or schedule.bounds_end is not None:
        bounds: dict[str, Any] = {}
        if schedule.bounds_start is not None:
            bounds["start"] = _date_time(schedule.bounds_start)
        if schedule.bounds_end is not None:
            bounds["end"] = _date_time(schedule.bounds_end)
        repeat["boundsPeriod"] = bounds
    optional = {
        "count": schedule.count,
        "duration": None if schedule.duration is None else fhir_number(schedule.duration),
        "durationUnit": schedule.duration_unit,
        "frequency": schedule.frequency,
        "period": None if schedule.period is None else fhir_number(schedule.period),
        "periodUnit": schedule.period_unit,
    }
    repeat.update((key, value) for key, value in optional.items() if value is not None)
    if repeat:
        timing["repeat"] = repeat
    if schedule.text is not None:
        timing["code"] = {"text": schedule.text}
    return timing


def _bsa_observation(patient: str, bsa_m2: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": BSA_CONTAINED_ID,
        "status": "final",
        "code": {
            "coding": [
                coding(
                    codes.LOINC,
                    codes.LOINC_BODY_SURFACE_AREA,
                    codes.LOINC_BODY_SURFACE_AREA_DISPLAY,
                )
            ],
            "text": codes.LOINC_BODY_SURFACE_AREA_DISPLAY,
        },
        "subject": {"reference": patient},
        "valueQuantity": ucum_quantity(bsa_m2, "m2"),
    }


def _identifier(identifier: Identifier) -> dict[str, Any]:
    if identifier.system is None:
        return {"value": identifier.value}
    return {"system": identifier.system, "value": identifier.value}


def _aware(value: datetime) -> datetime:
    return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)


def _instant(value: datetime) -> str:
    return fhir_date_time(_aware(value))


def _date_time(value: datetime) -> str:
    """A FHIR dateTime: midnight UTC is written as a plain date (see module docstring)."""
    value = _aware(value)
    if (
        not value.utcoffset()
        and value.hour == value.minute == value.second == value.microsecond == 0
    ):
        return value.date().isoformat()
    return fhir_date_time(value)
