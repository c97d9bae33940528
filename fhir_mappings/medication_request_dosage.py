"""How a MedicationRequest says to give the drug (pure): ``dosageInstruction[0]`` (dose, route,
rate, timing) and the body surface area a per-m2 dose refers to.

Structure and codings only: whether the dose is positive, fits the drug and is plausible, or
the route suits the order's role, are business rules
(``services.infusion_bridge.domain.order_rules``). A rate or a body surface area must still be
positive here: only this reader knows where it was found (``doseAndRate[n]``, ``contained[n]``).

``Timing.event`` dates become ``Schedule.day_offsets`` counted in days from
``Schedule.bounds_start`` (``boundsPeriod.start``); when the Timing has no ``boundsPeriod.start``
the first event is used as ``bounds_start``.
"""

from __future__ import annotations

from typing import Any, Final

from fhir_mappings import codes
from fhir_mappings.medication_request_drug import Contained
from fhir_mappings.medication_request_paths import DOSAGE, DOSE, MR, REPEAT
from fhir_mappings.reading import (
    Fields,
    IssueLog,
    concept_text,
    has_coding,
    to_datetime,
    to_float,
)

__all__ = ["read_bsa", "read_dose", "read_rate", "read_route", "read_schedule"]

_UNITS_OF_TIME: Final = codes.UNITS_OF_TIME


def read_dose(dosage: Any, log: IssueLog) -> Fields | None:
    """``doseAndRate[0].doseQuantity``: a value and a UCUM unit (any value and unit: the rules
    decide whether they suit the drug), as the fields of a :class:`Quantity`."""
    and_rates = dosage.doseAndRate if dosage is not None else None
    quantity = and_rates[0].doseQuantity if and_rates else None
    if quantity is None:
        log.add(
            "required",
            "a dose is required in dosageInstruction[0].doseAndRate[0].doseQuantity",
            DOSE,
        )
        return None
    value = quantity.value
    if value is None:
        log.add("required", "the dose has no value", DOSE)
    unit = _ucum(quantity, DOSE, "dose", log)
    if unit is None or value is None:
        return None
    return {"value": float(value), "unit": unit}


def read_route(dosage: Any) -> tuple[str | None, str | None]:
    """The SNOMED CT route code (an oral or IV one first) and its display, if any."""
    route = dosage.route if dosage is not None else None
    if route is None:
        return None, None
    chosen = None
    for coding in route.coding or ():
        if coding.system == codes.SNOMED and coding.code:
            if coding.code in codes.PREMEDICATION_ROUTES:
                chosen = coding
                break
            if chosen is None:
                chosen = coding
    if chosen is None:
        return None, route.text
    return str(chosen.code), chosen.display or route.text


def read_rate(dosage: Any, log: IssueLog) -> Fields | None:
    """The first ``rateQuantity`` or ``rateRatio`` of ``doseAndRate`` (``rateRange`` is not
    modelled), as the fields of a :class:`Rate`."""
    if dosage is None:
        return None
    for index, and_rate in enumerate(dosage.doseAndRate or ()):
        if and_rate.rateQuantity is not None:
            numerator = _quantity(and_rate.rateQuantity, index, ".rateQuantity", "rate", log)
            return {"numerator": numerator} if numerator is not None else None
        ratio = and_rate.rateRatio
        if ratio is not None:
            numerator = denominator = None
            if ratio.numerator is None or ratio.denominator is None:
                log.add(
                    "required",
                    "rateRatio needs a numerator and a denominator",
                    f"{DOSAGE}.doseAndRate[{index}].rateRatio",
                )
            else:
                numerator = _quantity(
                    ratio.numerator, index, ".rateRatio.numerator", "rate numerator", log
                )
                denominator = _quantity(
                    ratio.denominator, index, ".rateRatio.denominator", "rate denominator", log
                )
            if numerator is None or denominator is None:
                return None
            return {"numerator": numerator, "denominator": denominator}
    return None


def read_schedule(dosage: Any, log: IssueLog) -> Fields | None:
    """``dosageInstruction[0].timing`` reduced to the fields of a :class:`Schedule` (None when
    empty); only the fields that have a value."""
    timing = dosage.timing if dosage is not None else None
    if timing is None:
        return None
    fields: Fields = {}
    repeat = timing.repeat
    if repeat is not None:
        period, period_unit = repeat.period, repeat.periodUnit
        duration, duration_unit = repeat.duration, repeat.durationUnit
        if repeat.frequency is not None:
            fields["frequency"] = repeat.frequency
        if repeat.count is not None:
            fields["count"] = repeat.count
        if period is not None:
            fields["period"] = to_float(period)
        if period_unit is not None and _time_unit(period_unit, "periodUnit", log):
            fields["period_unit"] = period_unit
        if duration is not None:
            fields["duration"] = to_float(duration)
        if duration_unit is not None and _time_unit(duration_unit, "durationUnit", log):
            fields["duration_unit"] = duration_unit
        if period is not None and period_unit is None:
            log.add("required", "period needs a periodUnit", f"{REPEAT}.periodUnit")
        if duration is not None and duration_unit is None:
            log.add("required", "duration needs a durationUnit", f"{REPEAT}.durationUnit")
        bounds = repeat.boundsPeriod
        if bounds is not None:
            if bounds.start is not None:
                fields["bounds_start"] = to_datetime(bounds.start)
            if bounds.end is not None:
                fields["bounds_end"] = to_datetime(bounds.end)
    if timing.event:
        events = sorted(e for e in map(to_datetime, timing.event) if e is not None)
        if events:
            anchor = fields.get("bounds_start")
            if anchor is None:
                anchor = fields["bounds_start"] = events[0]
            fields["day_offsets"] = tuple((e.date() - anchor.date()).days for e in events)
    if timing.code is not None:
        text = concept_text(timing.code)
        if text is not None:
            fields["text"] = text
    return fields or None


def read_bsa(model: Any, contained: Contained, log: IssueLog) -> float | None:
    """The body surface area (m2) of the first contained LOINC 8277-6 Observation that
    ``supportingInformation`` points at."""
    for ref in model.supportingInformation or ():
        reference = ref.reference
        if not reference or not reference.startswith("#"):
            continue
        found = contained.get(reference[1:])
        if found is None:
            continue
        index, resource = found
        if resource.get_resource_type() != "Observation" or not has_coding(
            resource.code, codes.LOINC, codes.LOINC_BODY_SURFACE_AREA
        ):
            continue
        value = resource.valueQuantity
        expression = f"{MR}.contained[{index}].valueQuantity"
        if value is None or value.value is None:
            continue
        if (value.code or value.unit) != "m2" or value.system not in (None, codes.UCUM):
            log.add("code-invalid", "body surface area must be in UCUM 'm2'", expression)
            return None
        if value.value <= 0:
            log.add("value", "body surface area must be > 0", expression)
            return None
        return float(value.value)
    return None


def _ucum(quantity: Any, expression: str, what: str, log: IssueLog) -> str | None:
    system = quantity.system
    if system is not None and system != codes.UCUM:
        log.add(
            "code-invalid",
            f"the {what} unit must be UCUM ({codes.UCUM}), got system {system!r}",
            expression,
        )
        return None
    unit = quantity.code or quantity.unit
    if not unit:
        log.add("required", f"the {what} has no unit", expression)
        return None
    return str(unit)


def _quantity(quantity: Any, index: int, element: str, what: str, log: IssueLog) -> Fields | None:
    """A rate's Quantity at ``doseAndRate[index]<element>`` as the fields of a
    :class:`Quantity`: a UCUM unit and a value > 0."""
    value, unit, system = quantity.value, quantity.code or quantity.unit, quantity.system
    if unit and value is not None and value > 0 and (system is None or system == codes.UCUM):
        return {"value": float(value), "unit": str(unit)}  # the usual case: no paths built
    expression = f"{DOSAGE}.doseAndRate[{index}]{element}"
    unit = _ucum(quantity, expression, what, log)
    if value is None:
        log.add("required", f"the {what} has no value", expression)
        return None
    if value <= 0:
        log.add("value", f"the {what} must be > 0 (got {value})", expression)
        return None
    if unit is None:
        return None
    return {"value": float(value), "unit": unit}


def _time_unit(unit: str | None, element: str, log: IssueLog) -> str | None:
    if unit is None:
        return None
    if unit not in _UNITS_OF_TIME:
        log.add(
            "code-invalid",
            f"{element} {unit!r} is not a units-of-time code ({', '.join(sorted(_UNITS_OF_TIME))})",
            f"{REPEAT}.{element}",
        )
        return None
    return unit
