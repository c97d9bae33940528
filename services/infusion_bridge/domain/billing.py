"""What a finished session bills (US; domain.md §10), pure.

The infusion's exact start and stop, the minutes the drug ran (pauses excluded), the drug's
HCPCS code and units (milligrams given per unit), and the administration hours: an initial
hour plus one unit per additional hour, an additional hour counting only when it runs more than
30 minutes past the previous one; 15 minutes or less is an IV push. The time rules are as
commonly applied (UNVERIFIED wording: confirm with a coder).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final

from pydantic import BaseModel

from .catalog import DrugEntry
from .gates import infused_minutes
from .session_events import InfusionEnd, InfusionStart, Stop
from .sessions import InfusionSession

ADMINISTRATION_CODES: Final = {
    "complex": ("96413", "96415"),  # chemotherapy/complex biologic IV infusion
    "therapeutic": ("96365", "96366"),  # therapeutic IV infusion
}
PUSH_MINUTES: Final = 15
ADDITIONAL_HOUR_THRESHOLD: Final = 30


class AdministrationLine(BaseModel):
    code: str
    description: str
    units: int


class SessionBilling(BaseModel):
    infusion_start: datetime
    infusion_stop: datetime
    infusion_minutes: int
    """Minutes the drug was running (pauses excluded)."""
    paused_minutes: int
    drug_mg: float | None
    hcpcs: str | None
    hcpcs_units: int | None
    hcpcs_verified: bool
    administration: list[AdministrationLine]
    note: str


def administration_units(minutes: float) -> tuple[int, int]:
    """(initial hour units, additional hour units) for ``minutes`` of infusion."""
    if minutes <= PUSH_MINUTES:
        return 0, 0
    additional = 0
    remaining = minutes - 60
    while remaining > ADDITIONAL_HOUR_THRESHOLD:
        additional += 1
        remaining -= 60
    return 1, additional


def session_billing(
    session: InfusionSession, drug: DrugEntry | None, *, bsa_m2: float | None = None
) -> SessionBilling | None:
    """The billing lines of a session whose infusion ran and ended (None otherwise)."""
    start = session.last(InfusionStart)
    end = session.last(InfusionEnd) or session.last(Stop)
    if start is None or end is None or not isinstance(end.event, InfusionEnd | Stop):
        return None
    started, stopped = start.event.at, end.event.at
    running = infused_minutes(session, stopped)
    total = (stopped - started).total_seconds() / 60
    dose = end.event.dose_given
    mg = dose.value if dose.unit == "mg" else None
    if dose.unit == "mg/m2" and bsa_m2:
        mg = round(dose.value * bsa_m2, 2)
    billing = drug.billing if drug is not None else None
    units = None
    if billing is not None and mg is not None and billing.per.unit == "mg":
        units = math.ceil(round(mg / billing.per.value, 6))
    initial, additional = administration_units(running)
    lines: list[AdministrationLine] = []
    family = billing.administration if billing is not None else "complex"
    first, each = ADMINISTRATION_CODES[family]
    if initial:
        lines.append(
            AdministrationLine(code=first, description="IV infusion, up to 1 hour", units=1)
        )
    if additional:
        lines.append(
            AdministrationLine(code=each, description="each additional hour", units=additional)
        )
    note = (
        f"{PUSH_MINUTES} minutes or less: reported as an IV push"
        if not initial
        else "an additional hour counts when it runs more than 30 minutes (UNVERIFIED: confirm "
        "with a coder)"
    )
    return SessionBilling(
        infusion_start=started,
        infusion_stop=stopped,
        infusion_minutes=round(running),
        paused_minutes=round(total - running),
        drug_mg=mg,
        hcpcs=billing.hcpcs if billing is not None else None,
        hcpcs_units=units,
        hcpcs_verified=billing.verified if billing is not None else False,
        administration=lines,
        note=note,
    )
