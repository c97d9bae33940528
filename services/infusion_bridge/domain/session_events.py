"""The events a nurse records in an infusion session (what each carries and checks on its
own); the rules between them are in :mod:`.sessions`. Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .orders import Quantity


class BaseEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime = Field(ge=datetime(1970, 1, 2, tzinfo=UTC))
    """When it happened (chair-side time, timezone-aware)."""
    by: str | None = None
    """Who documented it (nurse id or name)."""
    note: str | None = Field(default=None, max_length=2000)


class CheckIn(BaseEvent):
    type: Literal["check-in"] = "check-in"


class Premedication(BaseEvent):
    type: Literal["premedication"] = "premedication"
    drug: str = Field(description="catalog key or RxNorm code of the premedication")
    dose: Quantity
    route: Literal["intravenous", "oral"]


class IvInsertion(BaseEvent):
    type: Literal["iv-insertion"] = "iv-insertion"
    site: str = Field(min_length=1, max_length=100, description="e.g. left antecubital fossa")
    gauge: int = Field(ge=14, le=26, description="catheter gauge (G)")


class InfusionStart(BaseEvent):
    type: Literal["infusion-start"] = "infusion-start"
    rate_ml_per_h: float = Field(gt=0, le=1000)


class RateChange(BaseEvent):
    type: Literal["rate-change"] = "rate-change"
    rate_ml_per_h: float = Field(gt=0, le=1000)


class Pause(BaseEvent):
    type: Literal["pause"] = "pause"
    reason: str | None = None


class Resume(BaseEvent):
    type: Literal["resume"] = "resume"
    rate_ml_per_h: float | None = Field(default=None, gt=0, le=1000)


class Vitals(BaseEvent):
    """Any subset of vital signs, in fixed units; impossible values are refused."""

    type: Literal["vitals"] = "vitals"
    systolic_mmhg: float | None = Field(default=None, ge=40, le=300)
    diastolic_mmhg: float | None = Field(default=None, ge=20, le=200)
    heart_rate_per_min: float | None = Field(default=None, ge=20, le=250)
    respiratory_rate_per_min: float | None = Field(default=None, ge=4, le=80)
    temperature_c: float | None = Field(default=None, ge=30, le=45)
    spo2_percent: float | None = Field(default=None, ge=50, le=100)
    weight_kg: float | None = Field(default=None, ge=2, le=400)

    @model_validator(mode="after")
    def _consistent(self) -> Vitals:
        values = [
            self.systolic_mmhg,
            self.diastolic_mmhg,
            self.heart_rate_per_min,
            self.respiratory_rate_per_min,
            self.temperature_c,
            self.spo2_percent,
            self.weight_kg,
        ]
        if all(v is None for v in values):
            raise ValueError("at least one vital sign is required")
        if (self.systolic_mmhg is None) != (self.diastolic_mmhg is None):
            raise ValueError("blood pressure needs both systolic_mmhg and diastolic_mmhg")
        sys_, dia = self.systolic_mmhg, self.diastolic_mmhg
        if sys_ is not None and dia is not None and dia >= sys_:
            raise ValueError("diastolic_mmhg must be lower than systolic_mmhg")
        return self


Symptom = Literal[
    "fever",
    "chills",
    "flushing",
    "rash",
    "itching",
    "hives",
    "headache",
    "nausea",
    "fatigue",
    "site-pain",
    "site-bruising",
]


class Reaction(BaseEvent):
    type: Literal["reaction"] = "reaction"
    symptoms: list[Symptom] = Field(min_length=1)
    severity: Literal["mild", "moderate", "severe", "life-threatening"]
    action: Literal["none", "slowed", "paused", "stopped"]
    treatment: str | None = Field(default=None, max_length=500)
    rate_ml_per_h: float | None = Field(
        default=None, gt=0, le=1000, description="the new rate when action is 'slowed'"
    )

    @model_validator(mode="after")
    def _slowed_has_rate(self) -> Reaction:
        if self.action == "slowed" and self.rate_ml_per_h is None:
            raise ValueError("rate_ml_per_h is required when the infusion was slowed")
        return self


class InfusionEnd(BaseEvent):
    type: Literal["infusion-end"] = "infusion-end"
    dose_given: Quantity
    volume_ml: float = Field(gt=0, le=5000)


class ObservationStart(BaseEvent):
    type: Literal["observation-start"] = "observation-start"


class Discharge(BaseEvent):
    type: Literal["discharge"] = "discharge"
    override_reason: str | None = Field(
        default=None, max_length=500, description="why discharge before the observation time"
    )


class Stop(BaseEvent):
    """The infusion was stopped early for good."""

    type: Literal["stop"] = "stop"
    reason: str = Field(min_length=1, max_length=500)
    dose_given: Quantity
    volume_ml: float | None = Field(default=None, ge=0, le=5000)


class TouchChecklist(BaseEvent):
    """The TOUCH Pre-infusion Patient Checklist (natalizumab REMS), before every infusion."""

    type: Literal["touch-checklist"] = "touch-checklist"
    authorized: bool = Field(
        description="the patient is currently 'Authorized' to receive natalizumab (TOUCH On-Line)"
    )
    authorization_date: date | None = Field(
        default=None, description="date of the current authorization (reauthorized every 6 months)"
    )
    new_or_worsening_symptoms: bool = Field(
        description="new or worsening medical problems over the past month lasting several days"
    )
    immunocompromising_condition: bool = Field(
        description="a condition that weakens the immune system (HIV/AIDS, leukaemia, transplant)"
    )
    immunosuppressant_medicines: bool = Field(
        description="medicines that weaken the immune system in the past month"
    )

    @property
    def passed(self) -> bool:
        """Authorized and every answer 'no': the patient may be infused."""
        return self.authorized and not (
            self.new_or_worsening_symptoms
            or self.immunocompromising_condition
            or self.immunosuppressant_medicines
        )


GateName = Literal["touch-checklist", "premedication", "rate", "lvef"]


class GateOverride(BaseEvent):
    """A safety gate passed on purpose: who decided (``by``) and why (kept, written back)."""

    type: Literal["gate-override"] = "gate-override"
    gate: GateName
    reason: str = Field(min_length=1, max_length=500)
    by: str = Field(min_length=1, max_length=200, description="who takes the decision")


class NotDone(BaseEvent):
    type: Literal["not-done"] = "not-done"
    reason: str = Field(min_length=1, max_length=500)


class Cancel(BaseEvent):
    type: Literal["cancel"] = "cancel"
    reason: str | None = Field(default=None, max_length=500)


SessionEvent = Annotated[
    CheckIn
    | Premedication
    | IvInsertion
    | InfusionStart
    | RateChange
    | Pause
    | Resume
    | Vitals
    | Reaction
    | InfusionEnd
    | ObservationStart
    | Discharge
    | Stop
    | TouchChecklist
    | GateOverride
    | NotDone
    | Cancel,
    Field(discriminator="type"),
]
