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
from fhir_mappings.reading import IssueLog, concept_text, has_coding, to_datetime, to_float
from services.infusion_bridge.domain.orders import Quantity, Rate, Schedule

__all__ = ["read_bsa", "read_dose", "read_rate", "read_route", "read_schedule"]

_UNITS_OF_TIME: Final = codes.UNITS_OF_TIME


def read_dose(dosage: Any, log: IssueLog) -> Quantity | None:
    """``doseAndRate[0].doseQuantity``: a value and a UCUM unit (any value and unit: the rules
    decide whether they suit the drug)."""
    and_rate = dosage.doseAndRate[0] if dosage is not None and dosage.doseAndRate else None
    quantity = and_rate.doseQuantity if and_rate is not None else None
    if quantity is None:
        log.add(
            "required",
            "a dose is required in dosageInstruction[0].doseAndRate[0].doseQuantity",
            DOSE,
        )
        return None
    if quantity.value is None:
        log.add("required", "the dose has no value", DOSE)
    unit = _ucum(quantity, DOSE, "dose", log)
    if unit is None or quantity.value is None:
        return None
    return Quantity(value=float(quantity.value), unit=unit)


def read_route(dosage: Any) -> tuple[str | None, str | None]:
    """The SNOMED CT route code (an oral or IV one first) and its display, if any."""
    route = dosage.route if dosage is not None else None
    if route is None:
        return None, None
    snomed = [c for c in route.coding or () if c.system == codes.SNOMED and c.code]
    if not snomed:
        return None, route.text
    chosen = next((c for c in snomed if c.code in codes.PREMEDICATION_ROUTES), snomed[0])
    return str(chosen.code), chosen.display or route.text


def read_rate(dosage: Any, log: IssueLog) -> Rate | None:
    """The first ``rateQuantity`` or ``rateRatio`` of ``doseAndRate`` (``rateRange`` is not
    modelled)."""
    if dosage is None:
        return None
    for index, and_rate in enumerate(dosage.doseAndRate or ()):
        base = f"{DOSAGE}.doseAndRate[{index}]"
        if and_rate.rateQuantity is not None:
            numerator = _quantity(and_rate.rateQuantity, f"{base}.rateQuantity", "rate", log)
            return Rate(numerator=numerator) if numerator is not None else None
        if and_rate.rateRatio is not None:
            ratio = and_rate.rateRatio
            numerator = denominator = None
            if ratio.numerator is None or ratio.denominator is None:
                log.add(
                    "required",
                    "rateRatio needs a numerator and a denominator",
                    f"{base}.rateRatio",
                )
            else:
                numerator = _quantity(
                    ratio.numerator, f"{base}.rateRatio.numerator", "rate numerator", log
                )
                denominator = _quantity(
                    ratio.denominator, f"{base}.rateRatio.denominator", "rate denominator", log
                )
            if numerator is None or denominator is None:
                return None
            return Rate(numerator=numerator, denominator=denominator)
    return None


def read_schedule(dosage: Any, log: IssueLog) -> Schedule | None:
    """``dosageInstruction[0].timing`` reduced to a :class:`Schedule` (None when empty)."""
    timing = dosage.timing if dosage is not None else None
    if timing is None:
        return None
    repeat = timing.repeat
    fields: dict[str, Any] = {}
    if repeat is not None:
        fields["frequency"] = repeat.frequency
        fields["count"] = repeat.count
        fields["period"] = to_float(repeat.period)
        fields["period_unit"] = _time_unit(repeat.periodUnit, "periodUnit", log)
        fields["duration"] = to_float(repeat.duration)
        fields["duration_unit"] = _time_unit(repeat.durationUnit, "durationUnit", log)
        if repeat.period is not None and repeat.periodUnit is None:
            log.add("required", "period needs a periodUnit", f"{REPEAT}.periodUnit")
        if repeat.duration is not None and repeat.durationUnit is None:
            log.add("required", "duration needs a durationUnit", f"{REPEAT}.durationUnit")
        bounds = repeat.boundsPeriod
        if bounds is not None:
            fields["bounds_start"] = to_datetime(bounds.start)
            fields["bounds_end"] = to_datetime(bounds.end)
    events = sorted(e for e in (to_datetime(v) for v in timing.event or ()) if e is not None)
    if events:
        anchor = fields.get("bounds_start")
        if anchor is None:
            anchor = fields["bounds_start"] = events[0]
        fields["day_offsets"] = tuple((e.date() - anchor.date()).days for e in events)
    if timing.code is not None:
        fields["text"] = concept_text(timing.code)
    fields = {k: v for k, v in fields.items() if v is not None}
    if not fields:
        return None
    return Schedule(**fields)


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
    if quantity.system is not None and quantity.system != codes.UCUM:
        log.add(
            "code-invalid",
            f"the {what} unit must be UCUM ({codes.UCUM}), got system {quantity.system!r}",
            expression,
        )
        return None
    unit = quantity.code or quantity.unit
    if not unit:
        log.add("required", f"the {what} has no unit", expression)
        return None
    return str(unit)


def _quantity(quantity: Any, expression: str, what: str, log: IssueLog) -> Quantity | None:
    unit = _ucum(quantity, expression, what, log)
    if quantity.value is None:
        log.add("required", f"the {what} has no value", expression)
        return None
    if quantity.value <= 0:
        log.add("value", f"the {what} must be > 0 (got {quantity.value})", expression)
        return None
    if unit is None:
        return None
    return Quantity(value=float(quantity.value), unit=unit)


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
