"""What the service reads about a patient from the EHR: earlier administrations of catalog
drugs, body measurements (weight, height, body surface area, LVEF) and the patient's name.

Pure data. Each record keeps where it came from (the EHR resource, its version) so the
history can show what was read from the EHR next to what was charted here.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .orders import Quantity

MeasurementKind = Literal["weight", "height", "bsa", "lvef"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EhrAdministration(_Frozen):
    """A MedicationAdministration of a catalog drug, as the EHR holds it."""

    resource_id: str
    version_id: str | None = None
    patient: str
    drug_key: str
    status: str
    given_at: datetime
    """``effectivePeriod.start`` (or ``effectiveDateTime``)."""
    ended_at: datetime | None = None
    dose: Quantity | None = None
    order_id: str | None = None
    """The MedicationRequest it fulfilled (``request``), when given."""

    @property
    def reference(self) -> str:
        ref = f"MedicationAdministration/{self.resource_id}"
        return f"{ref}/_history/{self.version_id}" if self.version_id else ref

    @property
    def counts_as_dose(self) -> bool:
        """Completed, or stopped after some drug went in (with a dose)."""
        return self.dose is not None and self.status in ("completed", "stopped")


class BodyMeasurement(_Frozen):
    """One Observation: body weight, height, body surface area or LVEF."""

    resource_id: str
    version_id: str | None = None
    patient: str
    kind: MeasurementKind
    value: float
    unit: str
    """UCUM code (kg, cm, m2, %)."""
    effective: datetime

    @property
    def reference(self) -> str:
        ref = f"Observation/{self.resource_id}"
        return f"{ref}/_history/{self.version_id}" if self.version_id else ref


class PatientDetails(_Frozen):
    """What people need to see to know whose record it is."""

    patient: str
    name: str | None = None
    birth_date: date | None = None
    source: Literal["ehr", "order"] = "ehr"
    """``ehr``: a Patient read from the EHR; ``order``: the order's ``subject.display``."""


class EhrHistory(_Frozen):
    """Everything one pull brought back for a patient."""

    patient: str
    administrations: tuple[EhrAdministration, ...] = ()
    measurements: tuple[BodyMeasurement, ...] = ()
    details: PatientDetails | None = None
    skipped: int = 0
    """Resources that could not be read (not FHIR R4, no date, unknown drug)."""


def latest(
    measurements: tuple[BodyMeasurement, ...] | list[BodyMeasurement],
    kind: MeasurementKind,
    *,
    before: datetime | None = None,
) -> BodyMeasurement | None:
    """The newest measurement of ``kind`` (taken before ``before``, when given)."""
    found = [
        m for m in measurements if m.kind == kind and (before is None or m.effective <= before)
    ]
    return max(found, key=lambda m: m.effective) if found else None


def body_surface_area(
    measurements: tuple[BodyMeasurement, ...] | list[BodyMeasurement], *, at: datetime
) -> float | None:
    """The body surface area (m2) on ``at``: the latest BSA Observation before it, else the
    Mosteller formula (sqrt(height cm x weight kg / 3600)) on the latest weight and height."""
    bsa = latest(measurements, "bsa", before=at)
    if bsa is not None:
        return bsa.value
    weight = latest(measurements, "weight", before=at)
    height = latest(measurements, "height", before=at)
    if weight is None or height is None:
        return None
    return round(math.sqrt(height.value * weight.value / 3600), 2)
