"""FHIR R4 MedicationRequest -> :class:`InfusionOrder` (pure: no I/O, no clock).

Reading (:func:`order_from_fhir`) validates the structure with the ``fhir.resources`` R4B models,
then checks what those models do not: code bindings, references, a drug the catalog recognises
by RxNorm, a dose with a value and a UCUM unit... Every problem becomes an :class:`Issue` with a
FHIRPath ``expression``; all issues found in one pass are raised together as a
:class:`MappingError`.

Reading checks FHIR structure and codings only. The business rules (IV route for infusion drugs,
a dose unit that fits the drug, a plausible dose...) are
``services.infusion_bridge.domain.order_rules.check_order``; report its violations at the
FHIRPaths of this mapping with :func:`violations_to_issues`::

    order = order_from_fhir(resource, catalog, medications=medications)
    violations = check_order(order, catalog)
    if violations:
        raise MappingError(violations_to_issues(violations))

The parts are read in :mod:`~fhir_mappings.medication_request_drug` (which drug) and
:mod:`~fhir_mappings.medication_request_dosage` (dose, route, rate, timing, body surface area).

Writing is :func:`order_to_fhir` in :mod:`fhir_mappings.medication_request_render` (re-exported
here); for every valid order ``order_from_fhir(order_to_fhir(order), catalog) == order``.

Date/time conventions: domain datetimes are timezone-aware. A FHIR ``date`` (or partial date
``YYYY``/``YYYY-MM``) is read as midnight UTC of its first day (rendering writes a ``dateTime``
at exactly midnight UTC as a date).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

from fhir_mappings import codes
from fhir_mappings.errors import MappingError
from fhir_mappings.medication_request_dosage import (
    read_bsa,
    read_dose,
    read_rate,
    read_route,
    read_schedule,
)
from fhir_mappings.medication_request_drug import based_on_request, read_drug
from fhir_mappings.medication_request_paths import (
    MR,
    order_element_path,
    violations_to_issues,
)
from fhir_mappings.medication_request_render import order_to_fhir
from fhir_mappings.operation_outcome import Issue
from fhir_mappings.reading import (
    Fields,
    IssueLog,
    concept_text,
    parse_model,
    to_datetime,
    validation_issues,
)
from services.infusion_bridge.domain.catalog import DrugCatalog
from services.infusion_bridge.domain.orders import InfusionOrder

__all__ = ["order_element_path", "order_from_fhir", "order_to_fhir", "violations_to_issues"]

MAX_PATIENT_REFERENCE: Final = 1024
"""Longest Patient reference taken (a base URL plus ``Patient/<id>``); the store indexes it."""
_PATIENT_REF: Final = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://\S+/)?Patient/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


def order_from_fhir(
    resource: Mapping[str, Any],
    catalog: DrugCatalog,
    *,
    medications: Mapping[str, Mapping[str, Any]] | None = None,
) -> InfusionOrder:
    """Map an R4 MedicationRequest (JSON) to an :class:`InfusionOrder`.

    ``catalog`` recognises the drug by its RxNorm code(s). ``medications`` resolves remote
    ``medicationReference``s: reference as written in the request (e.g. ``Medication/123``) ->
    the Medication resource JSON (e.g. from ``_include=MedicationRequest:medication``).
    Contained (``#id``) Medications need no entry.

    Raises :class:`MappingError` listing every structure or coding problem found. The order is
    not checked against the business rules: see ``domain.order_rules.check_order``.
    """
    if type(resource) is not dict and not isinstance(resource, Mapping):
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
    model = parse_model(MedicationRequest, resource, MR)
    return _read(model, catalog, medications)


def _read(
    m: Any, catalog: DrugCatalog, medications: Mapping[str, Mapping[str, Any]] | None
) -> InfusionOrder:
    log = IssueLog()
    contained = (
        {item.id: (i, item) for i, item in enumerate(m.contained) if item.id} if m.contained else {}
    )
    if not m.id:
        log.add("required", "the MedicationRequest must have an id", f"{MR}.id")
    version_id, last_updated = _meta(m, log)
    status = _code(m.status, codes.MEDICATION_REQUEST_STATUSES, "status", log)
    intent = _code(m.intent, codes.MEDICATION_REQUEST_INTENTS, "intent", log)
    patient = _patient(m, log)
    found = read_drug(m, contained, catalog, medications, log)
    dosage = m.dosageInstruction[0] if m.dosageInstruction else None
    dose = read_dose(dosage, log)
    route_code, route_display = read_route(dosage)
    rate = read_rate(dosage, log)
    schedule = read_schedule(dosage, log)
    bsa = read_bsa(m, contained, log) if m.supportingInformation else None
    if log.issues:
        raise MappingError(log.issues)
    assert found is not None
    entry, code, system = found
    role = entry.role_for(based_on_medication_request=bool(m.basedOn) and based_on_request(m))
    fields: Fields = {
        "id": m.id,
        "status": status,
        "intent": intent,
        "patient": patient,
        "drug": (
            catalog.drug(entry, code, role)
            if system == "rxnorm"
            else entry.drug_fields(code, role, system=system)
        ),
        "role": role,
        "dose": dose,
    }
    optional = (
        ("version_id", version_id),
        ("last_updated", last_updated),
        ("body_surface_area_m2", bsa),
        ("route_code", route_code),
        ("route_display", route_display),
        ("rate", rate),
        ("schedule", schedule),
        ("dosage_text", dosage.text if dosage is not None else None),
        ("authored_on", to_datetime(m.authoredOn)),
        ("requester", m.requester.reference if m.requester is not None else None),
    )
    for name, value in optional:  # only what has a value: left out, a field takes its default
        if value is not None:
            fields[name] = value
    if m.reasonCode or m.reasonReference:
        fields["reasons"] = _reasons(m)
    if m.note:
        fields["notes"] = tuple(n.text for n in m.note if n.text)
    if m.identifier:
        fields["identifiers"] = tuple(
            {"system": i.system, "value": i.value} for i in m.identifier if i.value
        )
    group = m.groupIdentifier
    if group is not None and group.value:
        fields["group_identifier"] = {"system": group.system, "value": group.value}
    if m.basedOn:
        fields["based_on"] = tuple(r.reference for r in m.basedOn if r.reference)
    try:
        # one validation for the order and every model in it (drug, dose, rate, schedule...)
        return InfusionOrder.model_validate(fields)
    except ValidationError as exc:  # defensive: the checks above should prevent this
        raise MappingError(validation_issues(exc, MR)) from exc


def _meta(m: Any, log: IssueLog) -> tuple[int | None, datetime | None]:
    meta = m.meta
    if meta is None:
        return None, None
    version_id: int | None = None
    if meta.versionId is not None:
        if meta.versionId.isdigit() and len(meta.versionId) <= 18:
            version_id = int(meta.versionId)
        else:
            log.add(
                "value",
                f"meta.versionId {meta.versionId!r} is not a non-negative integer",
                f"{MR}.meta.versionId",
            )
    return version_id, to_datetime(meta.lastUpdated)


def _code(value: str | None, allowed: frozenset[str], element: str, log: IssueLog) -> str | None:
    if value is None:
        log.add("required", f"{element} is required", f"{MR}.{element}")
        return None
    if value not in allowed:
        log.add(
            "code-invalid",
            f"{element} {value!r} is not in the R4 value set ({', '.join(sorted(allowed))})",
            f"{MR}.{element}",
        )
        return None
    return value


def _patient(m: Any, log: IssueLog) -> str | None:
    subject = m.subject
    reference = subject.reference if subject is not None else None
    if not reference:
        log.add("required", "subject must reference a Patient", f"{MR}.subject")
        return None
    if len(reference) > MAX_PATIENT_REFERENCE:
        log.add(
            "too-long",
            f"subject.reference is longer than {MAX_PATIENT_REFERENCE} characters",
            f"{MR}.subject.reference",
        )
        return None
    if not _PATIENT_REF.match(reference):
        log.add(
            "invalid",
            f"subject {reference!r} is not a Patient reference (Patient/<id>)",
            f"{MR}.subject",
        )
        return None
    return str(reference)


def _reasons(m: Any) -> tuple[str, ...]:
    reasons: list[str] = []
    for concept in m.reasonCode or ():
        text = concept_text(concept)
        if text:
            reasons.append(str(text))
    for ref in m.reasonReference or ():
        if ref.reference or ref.display:
            reasons.append(str(ref.reference or ref.display))
    return tuple(reasons)
