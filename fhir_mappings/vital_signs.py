"""A recorded :class:`Vitals` event -> R4 vital-sign Observations (pure: no I/O, no clock).

One Observation per measurement, each conforming to the matching R4 (4.0.1) base vital-signs
profile (``meta.profile`` names it so a validator checks it): blood pressure is one panel
(85354-9) with systolic/diastolic components; SpO2 carries 2708-6 (fixed by the base profile)
and 59408-5 (pulse oximetry, required by US Core). Values use UCUM codes from
``ucum-vitals-common``. See the domain reference (``domain.md``), section 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from fhir_mappings import codes
from fhir_mappings.datatypes import coding, fhir_date_time, ucum_quantity
from services.infusion_bridge.domain.session_events import Vitals

__all__ = [
    "PROFILE_BASE",
    "VITAL_SIGNS",
    "VitalSign",
    "vitals_observations",
]

PROFILE_BASE: Final = "http://hl7.org/fhir/StructureDefinition/"
VITAL_SIGNS_CATEGORY: Final = "vital-signs"

LOINC_BP_PANEL: Final = "85354-9"
LOINC_SYSTOLIC: Final = "8480-6"
LOINC_DIASTOLIC: Final = "8462-4"
LOINC_HEART_RATE: Final = "8867-4"
LOINC_RESP_RATE: Final = "9279-1"
LOINC_BODY_TEMP: Final = "8310-5"
LOINC_SPO2: Final = "2708-6"
LOINC_SPO2_PULSE_OX: Final = "59408-5"
LOINC_BODY_WEIGHT: Final = "29463-7"


@dataclass(frozen=True)
class VitalSign:
    """One kind of vital sign: its LOINC code(s), base profile and UCUM unit."""

    loinc: str
    display: str
    profile: str
    """Base profile id, e.g. ``heartrate`` (canonical: ``PROFILE_BASE + profile``)."""
    ucum: str
    unit: str
    """Human-readable unit (``Quantity.unit``)."""
    field: str
    """Attribute of :class:`Vitals` holding the value."""
    extra_codings: tuple[tuple[str, str], ...] = ()


VITAL_SIGNS: Final[tuple[VitalSign, ...]] = (
    VitalSign(
        LOINC_HEART_RATE, "Heart rate", "heartrate", "/min", "beats/min", "heart_rate_per_min"
    ),
    VitalSign(
        LOINC_RESP_RATE,
        "Respiratory rate",
        "resprate",
        "/min",
        "breaths/min",
        "respiratory_rate_per_min",
    ),
    VitalSign(LOINC_BODY_TEMP, "Body temperature", "bodytemp", "Cel", "°C", "temperature_c"),
    VitalSign(
        LOINC_SPO2,
        "Oxygen saturation in Arterial blood",
        "oxygensat",
        "%",
        "%",
        "spo2_percent",
        extra_codings=(
            (LOINC_SPO2_PULSE_OX, "Oxygen saturation in Arterial blood by Pulse oximetry"),
        ),
    ),
    VitalSign(LOINC_BODY_WEIGHT, "Body weight", "bodyweight", "kg", "kg", "weight_kg"),
)
"""Single-value vital signs, in the order they are emitted (after blood pressure)."""

_BP_PROFILE: Final = "bp"
_BP_DISPLAY: Final = "Blood pressure panel with all children optional"
_MMHG: Final = "mm[Hg]"


def vitals_observations(
    vitals: Vitals,
    *,
    subject: str,
    encounter: str,
    part_of: str | None,
) -> list[tuple[str, dict[str, Any]]]:
    """The Observations for one Vitals event, as ``(LOINC code, resource)`` pairs.

    ``subject``/``encounter``/``part_of`` are reference strings (``Patient/1``,
    ``urn:uuid:...``). The LOINC code is unique within one event, so callers can build a
    stable business identifier from it. Resources carry no ``id`` nor ``identifier``.
    """
    common = _Common(vitals, subject, encounter, part_of)
    out: list[tuple[str, dict[str, Any]]] = []
    if vitals.systolic_mmhg is not None and vitals.diastolic_mmhg is not None:
        resource = common.base(_BP_PROFILE, [_loinc(LOINC_BP_PANEL, _BP_DISPLAY)], "Blood pressure")
        resource["component"] = [
            _component(LOINC_SYSTOLIC, "Systolic blood pressure", vitals.systolic_mmhg),
            _component(LOINC_DIASTOLIC, "Diastolic blood pressure", vitals.diastolic_mmhg),
        ]
        out.append((LOINC_BP_PANEL, common.finish(resource)))
    for sign in VITAL_SIGNS:
        value = getattr(vitals, sign.field)
        if value is None:
            continue
        codings = [_loinc(sign.loinc, sign.display)]
        codings += [_loinc(code, display) for code, display in sign.extra_codings]
        resource = common.base(sign.profile, codings, sign.display)
        resource["valueQuantity"] = ucum_quantity(value, sign.ucum, unit=sign.unit)
        out.append((sign.loinc, common.finish(resource)))
    return out


@dataclass(frozen=True)
class _Common:
    vitals: Vitals
    subject: str
    encounter: str
    part_of: str | None

    def base(self, profile: str, codings: list[dict[str, Any]], text: str) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "meta": {"profile": [PROFILE_BASE + profile]},
        }
        if self.part_of is not None:
            resource["partOf"] = [{"reference": self.part_of}]
        resource["status"] = "final"
        resource["category"] = [
            {
                "coding": [
                    {
                        "system": codes.OBSERVATION_CATEGORY,
                        "code": VITAL_SIGNS_CATEGORY,
                        "display": "Vital Signs",
                    }
                ],
                "text": "Vital Signs",
            }
        ]
        resource["code"] = {"coding": codings, "text": text}
        resource["subject"] = {"reference": self.subject}
        resource["encounter"] = {"reference": self.encounter}
        resource["effectiveDateTime"] = fhir_date_time(self.vitals.at)
        if self.vitals.by:
            resource["performer"] = [{"display": self.vitals.by}]
        return resource

    def finish(self, resource: dict[str, Any]) -> dict[str, Any]:
        if self.vitals.note:
            resource["note"] = [{"text": self.vitals.note}]
        return resource


def _loinc(code: str, display: str) -> dict[str, Any]:
    return coding(codes.LOINC, code, display)


def _component(code: str, display: str, value: float) -> dict[str, Any]:
    return {
        "code": {"coding": [_loinc(code, display)], "text": display},
        "valueQuantity": ucum_quantity(value, _MMHG, unit="mmHg"),
    }
