"""An infusion session: its states, the events a nurse records, and the rules between them.

    scheduled -> checked-in -> premedicated -> iv-placed -> infusing <-> paused
              -> infusion-ended -> observing -> discharged (completed)
    also: stopped (early, with reason and dose given), not-done (with reason), cancelled

Premedication may also be given after the IV is placed; vitals can be taken from check-in
on; reactions from the infusion start on (also during observation). The TOUCH checklist
(natalizumab) is recorded after check-in, before the infusion starts; a gate override (a
safety gate passed on purpose, with who and why) from check-in until the infusion ends; neither
changes the state. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from .session_events import (
    BaseEvent,
    Discharge,
    InfusionEnd,
    InfusionStart,
    RateChange,
    Reaction,
    Resume,
    SessionEvent,
)


class SessionState(StrEnum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked-in"
    PREMEDICATED = "premedicated"
    IV_PLACED = "iv-placed"
    INFUSING = "infusing"
    PAUSED = "paused"
    INFUSION_ENDED = "infusion-ended"
    OBSERVING = "observing"
    DISCHARGED = "discharged"
    STOPPED = "stopped"
    NOT_DONE = "not-done"
    CANCELLED = "cancelled"


TERMINAL = frozenset(
    {SessionState.DISCHARGED, SessionState.STOPPED, SessionState.NOT_DONE, SessionState.CANCELLED}
)
"""States after which nothing more can be recorded (except late reactions)."""

DELIVERED_STATES = frozenset({SessionState.DISCHARGED, SessionState.STOPPED, SessionState.NOT_DONE})
"""Terminal states whose record goes back to the EHR."""


S = SessionState
_BEFORE_INFUSION = {S.SCHEDULED, S.CHECKED_IN, S.PREMEDICATED, S.IV_PLACED}

TRANSITIONS: dict[str, dict[SessionState, SessionState]] = {
    "check-in": {S.SCHEDULED: S.CHECKED_IN},
    "premedication": {
        S.CHECKED_IN: S.PREMEDICATED,
        S.PREMEDICATED: S.PREMEDICATED,
        S.IV_PLACED: S.IV_PLACED,
    },
    "iv-insertion": {S.CHECKED_IN: S.IV_PLACED, S.PREMEDICATED: S.IV_PLACED},
    "infusion-start": {S.IV_PLACED: S.INFUSING},
    "rate-change": {S.INFUSING: S.INFUSING},
    "pause": {S.INFUSING: S.PAUSED},
    "resume": {S.PAUSED: S.INFUSING},
    "vitals": {
        s: s
        for s in (
            S.CHECKED_IN,
            S.PREMEDICATED,
            S.IV_PLACED,
            S.INFUSING,
            S.PAUSED,
            S.INFUSION_ENDED,
            S.OBSERVING,
        )
    },
    "infusion-end": {S.INFUSING: S.INFUSION_ENDED, S.PAUSED: S.INFUSION_ENDED},
    "observation-start": {S.INFUSION_ENDED: S.OBSERVING},
    "discharge": {S.INFUSION_ENDED: S.DISCHARGED, S.OBSERVING: S.DISCHARGED},
    "stop": {S.INFUSING: S.STOPPED, S.PAUSED: S.STOPPED},
    "touch-checklist": {s: s for s in (S.CHECKED_IN, S.PREMEDICATED, S.IV_PLACED)},
    "gate-override": {
        s: s for s in (S.CHECKED_IN, S.PREMEDICATED, S.IV_PLACED, S.INFUSING, S.PAUSED)
    },
    "not-done": {s: S.NOT_DONE for s in _BEFORE_INFUSION},
    "cancel": {S.SCHEDULED: S.CANCELLED, S.CHECKED_IN: S.CANCELLED},
}
"""event type -> {state it may happen in: state after it}. Reactions are handled apart."""

_REACTION_STATES = {S.INFUSING, S.PAUSED, S.INFUSION_ENDED, S.OBSERVING}
_REACTION_ACTION = {"none": None, "slowed": None, "paused": S.PAUSED, "stopped": S.STOPPED}


class TransitionError(Exception):
    """An event that is not allowed now; nothing changes."""

    def __init__(self, message: str, element: str = "type") -> None:
        super().__init__(message)
        self.element = element


def next_state(state: SessionState, event: BaseEvent) -> SessionState:
    """The state after ``event``, or ``TransitionError`` if it may not happen in ``state``."""
    kind: str = getattr(event, "type")  # noqa: B009  (every concrete event has a literal type)
    if isinstance(event, Reaction):
        if state not in _REACTION_STATES:
            raise TransitionError(f"a reaction cannot be recorded while the session is {state}")
        target = _REACTION_ACTION[event.action]
        if target is None:
            return state
        if state not in (S.INFUSING, S.PAUSED):
            raise TransitionError(
                f"action '{event.action}' needs a running infusion (session is {state})", "action"
            )
        if target is S.PAUSED and state is S.PAUSED:
            return state
        return target
    allowed = TRANSITIONS.get(kind, {})
    if state not in allowed:
        can = sorted(k for k, v in TRANSITIONS.items() if state in v)
        raise TransitionError(
            f"'{kind}' is not allowed while the session is {state}; allowed now: "
            + (", ".join(can) if can else "nothing (the session is closed)")
        )
    return allowed[state]


def rate_from(event: BaseEvent) -> float | None:
    """The pump rate an event sets (mL/h), if any."""
    if isinstance(event, InfusionStart | RateChange):
        return event.rate_ml_per_h
    if isinstance(event, Resume | Reaction):
        return event.rate_ml_per_h
    return None


def observation_due(infusion_end: datetime, observation_minutes: int) -> datetime:
    return infusion_end + timedelta(minutes=observation_minutes)


class RecordedEvent(BaseModel):
    """An event as stored: its place in the timeline and when it was recorded."""

    model_config = ConfigDict(frozen=True)

    seq: int
    id: str
    """Stable id (used for business identifiers of the FHIR resources it becomes)."""
    recorded_at: datetime
    event: SessionEvent


class InfusionSession(BaseModel):
    """A session with its ordered timeline. ``order_id`` points at the cached order."""

    model_config = ConfigDict(frozen=True)

    id: str
    order_id: str
    patient: str
    drug_key: str
    state: SessionState = SessionState.SCHEDULED
    created_at: datetime
    events: tuple[RecordedEvent, ...] = ()

    def last(self, kind: type[BaseEvent]) -> RecordedEvent | None:
        for item in reversed(self.events):
            if isinstance(item.event, kind):
                return item
        return None

    def all(self, kind: type[BaseEvent]) -> list[RecordedEvent]:
        return [item for item in self.events if isinstance(item.event, kind)]


MAX_CLOCK_SKEW = timedelta(minutes=2)


def record(
    session: InfusionSession,
    event: SessionEvent,
    *,
    event_id: str,
    now: datetime,
    observation_minutes: int,
) -> InfusionSession:
    """Check ``event`` against the session and return the session with it appended.

    Rules: the event is not in the future (beyond a small clock skew) nor earlier than the
    last event; the state machine allows it; discharge comes only after the drug's
    post-infusion observation time, unless ``override_reason`` says why.
    """
    if event.at.tzinfo is None:
        raise TransitionError("'at' needs a timezone offset", "at")
    if event.at > now + MAX_CLOCK_SKEW:
        raise TransitionError(f"'at' {event.at.isoformat()} is in the future", "at")
    if session.events and event.at < session.events[-1].event.at:
        raise TransitionError(
            f"'at' {event.at.isoformat()} is before the previous event "
            f"({session.events[-1].event.at.isoformat()}); events are recorded in time order",
            "at",
        )
    new_state = next_state(session.state, event)
    if isinstance(event, Discharge) and not event.override_reason:
        ended = session.last(InfusionEnd)
        if ended is not None and observation_minutes > 0:
            due = observation_due(ended.event.at, observation_minutes)
            if event.at < due:
                raise TransitionError(
                    f"discharge before the {observation_minutes}-minute post-infusion observation "
                    f"ends ({due.isoformat()}); give override_reason to discharge anyway",
                    "at",
                )
    recorded = RecordedEvent(seq=len(session.events) + 1, id=event_id, recorded_at=now, event=event)
    return session.model_copy(update={"state": new_state, "events": (*session.events, recorded)})
