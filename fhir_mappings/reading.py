"""What the FHIR -> domain readers share (pure): R4B model validation turned into issues, an
issue log, and value conversions (dates, decimals, CodeableConcepts)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from fhir_mappings.errors import MappingError
from fhir_mappings.medication_request_paths import MEDICATION as MEDICATION_CHOICE
from fhir_mappings.operation_outcome import Issue

__all__ = [
    "Fields",
    "IssueLog",
    "concept_text",
    "has_coding",
    "parse_model",
    "to_datetime",
    "to_float",
    "validation_issues",
]

Fields = dict[str, Any]
"""The fields of a domain model as read, validated once with the whole order
(``InfusionOrder.model_validate``): one pydantic validation instead of one per nested model."""


class IssueLog:
    """The issues found in one pass over a resource, in the order found."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, code: str, diagnostics: str, expression: str) -> None:
        self.issues.append(Issue(code, diagnostics, (expression,)))

    def extend(self, issues: list[Issue]) -> None:
        self.issues.extend(issues)

    def __bool__(self) -> bool:
        return bool(self.issues)


def parse_model(model_class: Any, data: Mapping[str, Any], root: str) -> Any:
    """``data`` validated as an R4B ``model_class``; :class:`MappingError` if it is not valid."""
    try:
        # a dict as it is: the models do not change what they validate
        return model_class.model_validate(data if type(data) is dict else dict(data))
    except ValidationError as exc:
        raise MappingError(validation_issues(exc, root)) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # fhir.resources raises KeyError for an unknown contained resourceType, for instance.
        raise MappingError(
            [Issue("structure", f"invalid {root}: {type(exc).__name__}: {exc}", (root,))]
        ) from exc


def validation_issues(exc: ValidationError, root: str) -> list[Issue]:
    """One issue per pydantic error, with the FHIRPath of the element under ``root``."""
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
                        (MEDICATION_CHOICE,),
                    )
                )
            else:
                issues.append(
                    Issue(
                        "required",
                        "a medication (medicationCodeableConcept or medicationReference) "
                        "is required",
                        (MEDICATION_CHOICE,),
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


def has_coding(concept: Any, system: str, code: str) -> bool:
    return concept is not None and any(
        c.system == system and c.code == code for c in concept.coding or ()
    )


def concept_text(concept: Any) -> Any:
    """A CodeableConcept's text, else the display (or code) of its first coding that has one."""
    return concept.text or next(
        (c.display or c.code for c in concept.coding or () if c.display or c.code), None
    )


def to_float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def to_datetime(value: object) -> datetime | None:
    """A FHIR date/dateTime/instant as read by fhir.resources -> an aware datetime.

    A ``date`` (or partial date ``YYYY``/``YYYY-MM``) is midnight UTC of its first day.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            return value.replace(tzinfo=UTC)
        if not offset:
            return value.astimezone(UTC)  # the same as replace(tzinfo=UTC), in half the time
        return value.replace(tzinfo=timezone(offset))
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value)  # partial dates: YYYY or YYYY-MM
    year, _, month = text.partition("-")
    return datetime(int(year), int(month or 1), 1, tzinfo=UTC)
