"""FHIR R4 MedicationRequest -> :class:`InfusionOrder` (pure: no I/O, no clock).

Reading (:func:`order_from_fhir`) validates the structure with the ``fhir.resources`` R4B models,
then checks what those models do not (code bindings, a recognised drug, dose > 0 in a unit that
fits the drug, IV route for infusion drugs...). Every problem becomes an :class:`Issue` with a
FHIRPath ``expression``; all issues found in one pass are raised together as a
:class:`MappingError`.

Writing is :func:`order_to_fhir` in :mod:`fhir_mappings.medication_request_render` (re-exported
here); for every valid order ``order_from_fhir(order_to_fhir(order), catalog) == order``.

Date/time conventions: domain datetimes are timezone-aware. A FHIR ``date`` (or partial date
``YYYY``/``YYYY-MM``) is read as midnight UTC of its first day (rendering writes a ``dateTime``
at exactly midnight UTC as a date).

``Timing.event`` dates become ``Schedule.day_offsets`` counted in days from
``Schedule.bounds_start`` (``boundsPeriod.start``); when the Timing has no ``boundsPeriod.start``
the first event is used as ``bounds_start``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timezone
from decimal import Decimal
from typing import Any, Final

from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

from fhir_mappings import codes
from fhir_mappings.errors import MappingError
from fhir_mappings.medication_request_render import order_to_fhir
from fhir_mappings.operation_outcome import Issue
from services.infusion_bridge.domain.catalog import DrugCatalog, DrugEntry
from services.infusion_bridge.domain.orders import (
    Identifier,
    InfusionOrder,
    OrderIntent,
    OrderStatus,
    Quantity,
    Rate,
    Schedule,
)

__all__ = ["order_from_fhir", "order_to_fhir"]

MR: Final = "MedicationRequest"
DOSAGE: Final = f"{MR}.dosageInstruction[0]"
DOSE: Final = f"{DOSAGE}.doseAndRate[0].doseQuantity"
IMPLAUSIBLE_DOSE_FACTOR: Final = 10
"""A dose above this many times the catalog's typical high dose is refused as a likely typo."""
ROUTE: Final = f"{DOSAGE}.route"
TIMING: Final = f"{DOSAGE}.timing"
REPEAT: Final = f"{TIMING}.repeat"
MEDICATION: Final = f"{MR}.medication"
MEDICATION_CONCEPT: Final = f"{MR}.medicationCodeableConcept.coding"
MEDICATION_REFERENCE: Final = f"{MR}.medicationReference"

_PATIENT_REF = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://\S+/)?Patient/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_MEDICATION_REQUEST_REF = re.compile(r"(?:^|/)MedicationRequest/[A-Za-z0-9\-.]{1,64}")
_MEDICATION_TAIL = re.compile(r"(Medication/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_UNITS_OF_TIME: Final = codes.UNITS_OF_TIME


def order_from_fhir(
    resource: Mapping[str, Any],
    catalog: DrugCatalog,
    medications: Mapping[str, Mapping[str, Any]] | None = None,
) -> InfusionOrder:
    """Map an R4 MedicationRequest (JSON) to an :class:`InfusionOrder`.

    ``medications`` resolves remote ``medicationReference``s: reference as written in the
    request (e.g. ``Medication/123``) -> the Medication resource JSON (e.g. from
    ``_include=MedicationRequest:medication``). Contained (``#id``) Medications need no entry.

    Raises :class:`MappingError` listing every problem found.
    """
    if not isinstance(resource, Mapping):
        raise MappingError([Issue("structure", "a MedicationRequest must be a JSON object", (MR,))])
    resource_type = resource.get("resourceType")
    if resource_type != MR:
        raise MappingError(
            [
                Issue(
                    "invalid",
                    f"expected resourceType 'MedicationRequest', got {resource_type!r}",
                    (f"{MR}.resourceType",),
                )
            ]
        )
    model = _parse(MedicationRequest, resource, MR)
    return _Reader(model, catalog, medications).read()


def _parse(model_class: Any, data: Mapping[str, Any], root: str) -> Any:
    try:
        return model_class.model_validate(dict(data))
    except ValidationError as exc:
        raise MappingError(_validation_issues(exc, root)) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # fhir.resources raises KeyError for an unknown contained resourceType, for instance.
        raise MappingError(
            [Issue("structure", f"invalid {root}: {type(exc).__name__}: {exc}", (root,))]
        ) from exc


def _validation_issues(exc: ValidationError, root: str) -> list[Issue]:
    issues: list[Issue] = []
    for error in exc.errors(include_url=False):
        loc = error.get("loc", ())
        message = str(error.get("msg", "invalid value"))
        kind = str(error.get("type", ""))
        if not loc and "medicationCodeableConcept" in message:
            if "multiple" in message:
                issues.append(
                    Issue(
                        "structure",
                        "give medicationCodeableConcept or medicationReference, not both",
                        (MEDICATION,),
                    )
                )
            else:
                issues.append(
                    Issue(
                        "required",
                        "a medication (medicationCodeableConcept or medicationReference) "
                        "is required",
                        (MEDICATION,),
                    )
                )
            continue
        code = "required" if kind.endswith("missing") else "structure"
        issues.append(Issue(code, message, (_loc_to_path(root, loc),)))
    return issues or [Issue("structure", str(exc), (root,))]


def _loc_to_path(root: str, loc: tuple[int | str, ...]) -> str:
    path = [root]
    for part in loc:
        if isinstance(part, int):
            path.append(f"[{part}]")
        elif part == "resource_type":
            path.append(".resourceType")
        elif "[" in part or " " in part:
            continue  # pydantic-internal validator tags
        elif part.endswith("__ext"):
            path.append(f".{part[:-5]}")
        else:
            path.append(f".{part}")
    return "".join(path)


class _Reader:
    """One pass over a validated MedicationRequest model, collecting issues."""

    def __init__(
        self,
        model: Any,
        catalog: DrugCatalog,
        medications: Mapping[str, Mapping[str, Any]] | None,
    ) -> None:
        self.m = model
        self.catalog = catalog
        self.medications = medications
        self.issues: list[Issue] = []
        self.contained: dict[str, tuple[int, Any]] = {}
        for index, item in enumerate(model.contained or ()):
            if item.id:
                self.contained[item.id] = (index, item)

    def issue(self, code: str, diagnostics: str, expression: str) -> None:
        self.issues.append(Issue(code, diagnostics, (expression,)))

    # -- the whole order ------------------------------------------------------------------------

    def read(self) -> InfusionOrder:
        m = self.m
        if not m.id:
            self.issue("required", "the MedicationRequest must have an id", f"{MR}.id")
        version_id, last_updated = self._meta()
        status = self._code(m.status, codes.MEDICATION_REQUEST_STATUSES, "status")
        intent = self._code(m.intent, codes.MEDICATION_REQUEST_INTENTS, "intent")
        patient = self._patient()
        found = self._drug()
        based_on = tuple(r.reference for r in m.basedOn or () if r.reference)

        dosage = m.dosageInstruction[0] if m.dosageInstruction else None
        dose = self._dose(dosage, found[0] if found else None)
        route_code, route_display = self._route(dosage)
        rate = self._rate(dosage)
        schedule = self._schedule(dosage)
        bsa = self._bsa()

        role = None
        if found is not None:
            entry = found[0]
            role = entry.role_for(based_on_medication_request=self._based_on_request())
            self._check_route(role, route_code, entry)

        if self.issues:
            raise MappingError(self.issues)
        assert found is not None
        assert role is not None
        assert dose is not None
        assert status is not None
        assert intent is not None
        assert patient is not None
        entry, rxnorm = found
        try:
            return InfusionOrder(
                id=m.id,
                version_id=version_id,
                last_updated=last_updated,
                status=OrderStatus(status),
                intent=OrderIntent(intent),
                patient=patient,
                drug=entry.to_drug(rxnorm, role),
                role=role,
                dose=dose,
                body_surface_area_m2=bsa,
                route_code=route_code,
                route_display=route_display,
                rate=rate,
                schedule=schedule,
                dosage_text=dosage.text if dosage is not None else None,
                authored_on=_to_datetime(m.authoredOn),
                requester=m.requester.reference if m.requester is not None else None,
                reasons=self._reasons(),
                notes=tuple(n.text for n in m.note or () if n.text),
                identifiers=tuple(_identifier(i) for i in m.identifier or () if i.value),
                group_identifier=(
                    _identifier(m.groupIdentifier)
                    if m.groupIdentifier is not None and m.groupIdentifier.value
                    else None
                ),
                based_on=based_on,
            )
        except ValidationError as exc:  # defensive: the checks above should prevent this
            raise MappingError(_validation_issues(exc, MR)) from exc

    def _based_on_request(self) -> bool:
        return any(
            r.reference
            and (r.type == MR or _MEDICATION_REQUEST_REF.search(r.reference) is not None)
            for r in self.m.basedOn or ()
        )

    # -- header ---------------------------------------------------------------------------------

    def _meta(self) -> tuple[int | None, datetime | None]:
        meta = self.m.meta
        if meta is None:
            return None, None
        version_id: int | None = None
        if meta.versionId is not None:
            if meta.versionId.isdigit() and len(meta.versionId) <= 18:
                version_id = int(meta.versionId)
            else:
                self.issue(
                    "value",
                    f"meta.versionId {meta.versionId!r} is not a non-negative integer",
                    f"{MR}.meta.versionId",
                )
        return version_id, _to_datetime(meta.lastUpdated)

    def _code(self, value: str | None, allowed: frozenset[str], element: str) -> str | None:
        if value is None:
            self.issue("required", f"{element} is required", f"{MR}.{element}")
            return None
        if value not in allowed:
            self.issue(
                "code-invalid",
                f"{element} {value!r} is not in the R4 value set ({', '.join(sorted(allowed))})",
                f"{MR}.{element}",
            )
            return None
        return value

    def _patient(self) -> str | None:
        subject = self.m.subject
        reference = subject.reference if subject is not None else None
        if not reference:
            self.issue("required", "subject must reference a Patient", f"{MR}.subject")
            return None
        if not _PATIENT_REF.match(reference):
            self.issue(
                "invalid",
                f"subject {reference!r} is not a Patient reference (Patient/<id>)",
                f"{MR}.subject",
            )
            return None
        return str(reference)

    # -- the drug -------------------------------------------------------------------------------

    def _drug(self) -> tuple[DrugEntry, str] | None:
        m = self.m
        if m.medicationCodeableConcept is not None:
            return self._from_concepts([m.medicationCodeableConcept], MEDICATION_CONCEPT)
        ref = m.medicationReference
        if ref is None:
            self.issue("required", "a medication is required", MEDICATION)
            return None
        reference = ref.reference
        if not reference:
            self.issue(
                "required",
                "medicationReference has no reference (a display alone cannot be mapped)",
                MEDICATION_REFERENCE,
            )
            return None
        if reference.startswith("#"):
            found = self.contained.get(reference[1:])
            if found is None or found[1].get_resource_type() != "Medication":
                self.issue(
                    "not-found",
                    f"medicationReference {reference!r} names no contained Medication",
                    MEDICATION_REFERENCE,
                )
                return None
            medication = found[1]
        else:
            data = self._remote_medication(reference)
            if data is None:
                self.issue(
                    "not-found",
                    f"medicationReference {reference!r} was not resolved: pass the Medication "
                    "resource in `medications`",
                    MEDICATION_REFERENCE,
                )
                return None
            if data.get("resourceType") != "Medication":
                self.issue(
                    "invalid",
                    f"{reference!r} resolved to a {data.get('resourceType')!r}, not a Medication",
                    MEDICATION_REFERENCE,
                )
                return None
            try:
                medication = _parse(Medication, data, "Medication")
            except MappingError as exc:
                self.issues.extend(exc.issues)
                return None
        concepts = [medication.code] if medication.code is not None else []
        concepts += [
            i.itemCodeableConcept
            for i in medication.ingredient or ()
            if i.itemCodeableConcept is not None
        ]
        return self._from_concepts(concepts, MEDICATION_REFERENCE)

    def _remote_medication(self, reference: str) -> Mapping[str, Any] | None:
        if not self.medications:
            return None
        data = self.medications.get(reference)
        if data is None:
            tail = _MEDICATION_TAIL.search(reference)
            if tail is not None:
                data = self.medications.get(tail.group(1))
        return data

    def _from_concepts(self, concepts: list[Any], expression: str) -> tuple[DrugEntry, str] | None:
        """The first RxNorm coding the catalog knows, in order: the Medication code, then each
        ingredient (diluents such as sodium chloride are simply not in the catalog)."""
        seen: list[str] = []
        for concept in concepts:
            for coding in concept.coding or ():
                if coding.system != codes.RXNORM or not coding.code:
                    continue
                entry = self.catalog.by_rxnorm(coding.code)
                if entry is not None:
                    return entry, str(coding.code)
                seen.append(str(coding.code))
        if seen:
            self.issue(
                "code-invalid",
                f"RxNorm code(s) {', '.join(seen)} not in the drug catalog",
                expression,
            )
        else:
            self.issue(
                "code-invalid",
                f"no RxNorm coding (system {codes.RXNORM}) identifies the drug",
                expression,
            )
        return None

    # -- dosage ---------------------------------------------------------------------------------

    def _dose(self, dosage: Any, entry: DrugEntry | None) -> Quantity | None:
        and_rate = dosage.doseAndRate[0] if dosage is not None and dosage.doseAndRate else None
        quantity = and_rate.doseQuantity if and_rate is not None else None
        if quantity is None:
            self.issue(
                "required",
                "a dose is required in dosageInstruction[0].doseAndRate[0].doseQuantity",
                DOSE,
            )
            return None
        ok = True
        if quantity.value is None:
            self.issue("required", "the dose has no value", DOSE)
            ok = False
        elif quantity.value <= 0:
            self.issue("value", f"the dose must be > 0 (got {quantity.value})", DOSE)
            ok = False
        unit = self._ucum(quantity, DOSE, "dose")
        if unit is None:
            ok = False
        elif entry is not None and unit not in entry.dose_units:
            self.issue(
                "code-invalid",
                f"a {entry.name} dose cannot be given in {unit!r} "
                f"(allowed: {', '.join(entry.dose_units)})",
                DOSE,
            )
            ok = False
        elif entry is not None and quantity.value is not None:
            typical = entry.typical_dose
            limit = typical.high * IMPLAUSIBLE_DOSE_FACTOR if typical else None
            if typical and unit == typical.unit and limit and quantity.value > limit:
                self.issue(
                    "business-rule",
                    f"a {entry.name} dose of {quantity.value} {unit} is implausible "
                    f"(more than {IMPLAUSIBLE_DOSE_FACTOR}x the typical {typical.high:g} {unit})",
                    DOSE,
                )
                ok = False
        if not ok:
            return None
        assert unit is not None
        return Quantity(value=float(quantity.value), unit=unit)

    def _ucum(self, quantity: Any, expression: str, what: str) -> str | None:
        if quantity.system is not None and quantity.system != codes.UCUM:
            self.issue(
                "code-invalid",
                f"the {what} unit must be UCUM ({codes.UCUM}), got system {quantity.system!r}",
                expression,
            )
            return None
        unit = quantity.code or quantity.unit
        if not unit:
            self.issue("required", f"the {what} has no unit", expression)
            return None
        return str(unit)

    def _route(self, dosage: Any) -> tuple[str | None, str | None]:
        route = dosage.route if dosage is not None else None
        if route is None:
            return None, None
        snomed = [c for c in route.coding or () if c.system == codes.SNOMED and c.code]
        if not snomed:
            return None, route.text
        chosen = next((c for c in snomed if c.code in codes.PREMEDICATION_ROUTES), snomed[0])
        return str(chosen.code), chosen.display or route.text

    def _check_route(self, role: str, route_code: str | None, entry: DrugEntry) -> None:
        if role == "infusion":
            if route_code is None:
                self.issue(
                    "business-rule",
                    f"{entry.name} is an infusion drug: an intravenous route (SNOMED "
                    f"{codes.ROUTE_INTRAVENOUS}) is required",
                    ROUTE,
                )
            elif route_code not in codes.INTRAVENOUS_ROUTES:
                self.issue(
                    "business-rule",
                    f"{entry.name} must be given intravenously (SNOMED "
                    f"{codes.ROUTE_INTRAVENOUS}), not by route {route_code}",
                    ROUTE,
                )
        elif route_code is not None and route_code not in codes.PREMEDICATION_ROUTES:
            self.issue(
                "business-rule",
                f"premedication {entry.name} must be oral or intravenous, not route {route_code}",
                ROUTE,
            )

    def _rate(self, dosage: Any) -> Rate | None:
        if dosage is None:
            return None
        for index, and_rate in enumerate(dosage.doseAndRate or ()):
            base = f"{DOSAGE}.doseAndRate[{index}]"
            if and_rate.rateQuantity is not None:
                numerator = self._quantity(and_rate.rateQuantity, f"{base}.rateQuantity", "rate")
                return Rate(numerator=numerator) if numerator is not None else None
            if and_rate.rateRatio is not None:
                ratio = and_rate.rateRatio
                numerator = denominator = None
                if ratio.numerator is None or ratio.denominator is None:
                    self.issue(
                        "required",
                        "rateRatio needs a numerator and a denominator",
                        f"{base}.rateRatio",
                    )
                else:
                    numerator = self._quantity(
                        ratio.numerator, f"{base}.rateRatio.numerator", "rate numerator"
                    )
                    denominator = self._quantity(
                        ratio.denominator, f"{base}.rateRatio.denominator", "rate denominator"
                    )
                if numerator is None or denominator is None:
                    return None
                return Rate(numerator=numerator, denominator=denominator)
        return None  # rateRange is not modelled

    def _quantity(self, quantity: Any, expression: str, what: str) -> Quantity | None:
        unit = self._ucum(quantity, expression, what)
        if quantity.value is None:
            self.issue("required", f"the {what} has no value", expression)
            return None
        if quantity.value <= 0:
            self.issue("value", f"the {what} must be > 0 (got {quantity.value})", expression)
            return None
        if unit is None:
            return None
        return Quantity(value=float(quantity.value), unit=unit)

    def _schedule(self, dosage: Any) -> Schedule | None:
        timing = dosage.timing if dosage is not None else None
        if timing is None:
            return None
        repeat = timing.repeat
        fields: dict[str, Any] = {}
        if repeat is not None:
            fields["frequency"] = repeat.frequency
            fields["count"] = repeat.count
            fields["period"] = _float(repeat.period)
            fields["period_unit"] = self._time_unit(repeat.periodUnit, "periodUnit")
            fields["duration"] = _float(repeat.duration)
            fields["duration_unit"] = self._time_unit(repeat.durationUnit, "durationUnit")
            if repeat.period is not None and repeat.periodUnit is None:
                self.issue("required", "period needs a periodUnit", f"{REPEAT}.periodUnit")
            if repeat.duration is not None and repeat.durationUnit is None:
                self.issue("required", "duration needs a durationUnit", f"{REPEAT}.durationUnit")
            bounds = repeat.boundsPeriod
            if bounds is not None:
                fields["bounds_start"] = _to_datetime(bounds.start)
                fields["bounds_end"] = _to_datetime(bounds.end)
        events = sorted(e for e in (_to_datetime(v) for v in timing.event or ()) if e is not None)
        if events:
            anchor = fields.get("bounds_start")
            if anchor is None:
                anchor = fields["bounds_start"] = events[0]
            fields["day_offsets"] = tuple((e.date() - anchor.date()).days for e in events)
        code = timing.code
        if code is not None:
            fields["text"] = _concept_text(code)
        fields = {k: v for k, v in fields.items() if v is not None}
        if not fields:
            return None
        return Schedule(**fields)

    def _time_unit(self, unit: str | None, element: str) -> str | None:
        if unit is None:
            return None
        if unit not in _UNITS_OF_TIME:
            self.issue(
                "code-invalid",
                f"{element} {unit!r} is not a units-of-time code "
                f"({', '.join(sorted(_UNITS_OF_TIME))})",
                f"{REPEAT}.{element}",
            )
            return None
        return unit

    # -- supporting information -----------------------------------------------------------------

    def _bsa(self) -> float | None:
        for ref in self.m.supportingInformation or ():
            reference = ref.reference
            if not reference or not reference.startswith("#"):
                continue
            found = self.contained.get(reference[1:])
            if found is None:
                continue
            index, resource = found
            if resource.get_resource_type() != "Observation" or not _has_coding(
                resource.code, codes.LOINC, codes.LOINC_BODY_SURFACE_AREA
            ):
                continue
            value = resource.valueQuantity
            expression = f"{MR}.contained[{index}].valueQuantity"
            if value is None or value.value is None:
                continue
            if (value.code or value.unit) != "m2" or value.system not in (None, codes.UCUM):
                self.issue("code-invalid", "body surface area must be in UCUM 'm2'", expression)
                return None
            if value.value <= 0:
                self.issue("value", "body surface area must be > 0", expression)
                return None
            return float(value.value)
        return None

    def _reasons(self) -> tuple[str, ...]:
        reasons: list[str] = []
        for concept in self.m.reasonCode or ():
            text = _concept_text(concept)
            if text:
                reasons.append(str(text))
        for ref in self.m.reasonReference or ():
            if ref.reference or ref.display:
                reasons.append(str(ref.reference or ref.display))
        return tuple(reasons)


def _has_coding(concept: Any, system: str, code: str) -> bool:
    return concept is not None and any(
        c.system == system and c.code == code for c in concept.coding or ()
    )


def _concept_text(concept: Any) -> Any:
    """A CodeableConcept's text, else the display (or code) of its first coding that has one."""
    return concept.text or next(
        (c.display or c.code for c in concept.coding or () if c.display or c.code), None
    )


def _identifier(identifier: Any) -> Identifier:
    return Identifier(system=identifier.system, value=identifier.value)


def _float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _to_datetime(value: object) -> datetime | None:
    """A FHIR date/dateTime/instant as read by fhir.resources -> an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            return value.replace(tzinfo=UTC)
        return value.replace(tzinfo=UTC if not offset else timezone(offset))
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value)  # partial dates: YYYY or YYYY-MM
    year, _, month = text.partition("-")
    return datetime(int(year), int(month or 1), 1, tzinfo=UTC)
