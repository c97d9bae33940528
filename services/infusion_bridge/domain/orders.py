"""The infusion order as the service understands it, independent of FHIR's shape."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OrderStatus(StrEnum):
    """R4 medicationrequest-status."""

    ACTIVE = "active"
    ON_HOLD = "on-hold"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"
    STOPPED = "stopped"
    DRAFT = "draft"
    UNKNOWN = "unknown"


class OrderIntent(StrEnum):
    """R4 medicationrequest-intent."""

    PROPOSAL = "proposal"
    PLAN = "plan"
    ORDER = "order"
    ORIGINAL_ORDER = "original-order"
    REFLEX_ORDER = "reflex-order"
    FILLER_ORDER = "filler-order"
    INSTANCE_ORDER = "instance-order"
    OPTION = "option"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Identifier(_Frozen):
    system: str | None = None
    value: str


class Quantity(_Frozen):
    """A value with its UCUM code (``mg``, ``mg/m2``, ``mL/h``, ``h``...)."""

    value: float
    unit: str


class Rate(_Frozen):
    """How fast to infuse: a volume or amount per time.

    ``rateQuantity`` {30 mL/h} maps to numerator=30 mL/h, denominator=None;
    ``rateRatio`` {100 mg}/{1 h} maps to numerator=100 mg, denominator=1 h.
    """

    numerator: Quantity
    denominator: Quantity | None = None


class Schedule(_Frozen):
    """FHIR ``Timing.repeat`` reduced to what infusion scheduling needs."""

    frequency: int | None = None
    period: float | None = None
    period_unit: Literal["s", "min", "h", "d", "wk", "mo", "a"] | None = None
    count: int | None = None
    duration: float | None = None
    duration_unit: Literal["s", "min", "h", "d", "wk", "mo", "a"] | None = None
    bounds_start: datetime | None = None
    bounds_end: datetime | None = None
    day_offsets: tuple[int, ...] = ()
    """Extra days of a course (e.g. day 1 and day 15 -> (0, 14)), from ``Timing.event``."""
    text: str | None = None


class Drug(_Frozen):
    """A drug recognised from the catalog (``contracts/drug-catalog.json``)."""

    key: str
    """Catalog key, e.g. ``ocrelizumab``; all codes of one ingredient share it."""
    name: str
    rxnorm: str | None = None
    """The RxNorm code the EHR sent (ingredient, clinical or branded drug)."""
    ndc: str | None = None
    """The NDC the EHR sent, when the drug was recognised by NDC instead."""
    drug_class: Literal["infusion", "premedication"]


class InfusionOrder(_Frozen):
    """One cached MedicationRequest: an infusion order or a premedication order."""

    id: str
    version_id: int | None = None
    last_updated: datetime | None = None
    status: OrderStatus
    intent: OrderIntent
    patient: str
    """Reference to the Patient, e.g. ``Patient/123``."""
    drug: Drug
    role: Literal["infusion", "premedication"]
    dose: Quantity
    body_surface_area_m2: float | None = None
    route_code: str | None = None
    route_display: str | None = None
    rate: Rate | None = None
    schedule: Schedule | None = None
    dosage_text: str | None = None
    authored_on: datetime | None = None
    requester: str | None = None
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    group_identifier: Identifier | None = None
    based_on: tuple[str, ...] = Field(default=())
    """References to the orders this one depends on, e.g. a premed's infusion order."""


def patient_reference(value: str) -> str:
    """``123`` or ``Patient/123`` -> ``Patient/123`` (how orders and sessions store it)."""
    return value if "/" in value else f"Patient/{value}"
