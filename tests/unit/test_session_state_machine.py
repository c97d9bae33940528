"""The session state machine: every (state, event) pair, legal or not, and the timing rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.infusion_bridge.domain.orders import Quantity
from services.infusion_bridge.domain.session_events import (
    Cancel,
    CheckIn,
    Discharge,
    GateOverride,
    InfusionEnd,
    InfusionStart,
    IvInsertion,
    NotDone,
    ObservationStart,
    Pause,
    Premedication,
    RateChange,
    Reaction,
    Resume,
    Stop,
    TouchChecklist,
    Vitals,
)
from services.infusion_bridge.domain.sessions import (
    TRANSITIONS,
    InfusionSession,
    SessionState,
    TransitionError,
    next_state,
    record,
)

S = SessionState
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
MG = Quantity(value=600, unit="mg")

EVENTS = {
    "check-in": CheckIn(at=T0),
    "premedication": Premedication(
        at=T0, drug="diphenhydramine", dose=Quantity(value=50, unit="mg"), route="oral"
    ),
    "iv-insertion": IvInsertion(at=T0, site="left forearm", gauge=20),
    "infusion-start": InfusionStart(at=T0, rate_ml_per_h=40),
    "rate-change": RateChange(at=T0, rate_ml_per_h=80),
    "pause": Pause(at=T0),
    "resume": Resume(at=T0),
    "vitals": Vitals(at=T0, heart_rate_per_min=72),
    "infusion-end": InfusionEnd(at=T0, dose_given=MG, volume_ml=500),
    "observation-start": ObservationStart(at=T0),
    "discharge": Discharge(at=T0, override_reason="test"),
    "stop": Stop(at=T0, reason="reaction", dose_given=Quantity(value=200, unit="mg")),
    "not-done": NotDone(at=T0, reason="active infection"),
    "cancel": Cancel(at=T0),
    "touch-checklist": TouchChecklist(
        at=T0,
        authorized=True,
        new_or_worsening_symptoms=False,
        immunocompromising_condition=False,
        immunosuppressant_medicines=False,
    ),
    "gate-override": GateOverride(at=T0, gate="rate", reason="prescriber order", by="Dr A"),
}

EXPECTED = {
    ("check-in", S.SCHEDULED): S.CHECKED_IN,
    ("premedication", S.CHECKED_IN): S.PREMEDICATED,
    ("premedication", S.PREMEDICATED): S.PREMEDICATED,
    ("premedication", S.IV_PLACED): S.IV_PLACED,
    ("iv-insertion", S.CHECKED_IN): S.IV_PLACED,
    ("iv-insertion", S.PREMEDICATED): S.IV_PLACED,
    ("infusion-start", S.IV_PLACED): S.INFUSING,
    ("rate-change", S.INFUSING): S.INFUSING,
    ("pause", S.INFUSING): S.PAUSED,
    ("resume", S.PAUSED): S.INFUSING,
    ("infusion-end", S.INFUSING): S.INFUSION_ENDED,
    ("infusion-end", S.PAUSED): S.INFUSION_ENDED,
    ("observation-start", S.INFUSION_ENDED): S.OBSERVING,
    ("discharge", S.INFUSION_ENDED): S.DISCHARGED,
    ("discharge", S.OBSERVING): S.DISCHARGED,
    ("stop", S.INFUSING): S.STOPPED,
    ("stop", S.PAUSED): S.STOPPED,
    ("cancel", S.SCHEDULED): S.CANCELLED,
    ("cancel", S.CHECKED_IN): S.CANCELLED,
    **{
        ("not-done", s): S.NOT_DONE
        for s in (S.SCHEDULED, S.CHECKED_IN, S.PREMEDICATED, S.IV_PLACED)
    },
    **{("touch-checklist", s): s for s in (S.CHECKED_IN, S.PREMEDICATED, S.IV_PLACED)},
    **{
        ("gate-override", s): s
        for s in (S.CHECKED_IN, S.PREMEDICATED, S.IV_PLACED, S.INFUSING, S.PAUSED)
    },
    **{
        ("vitals", s): s
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
}

PAIRS = [(kind, state) for kind in EVENTS for state in SessionState]


@pytest.mark.parametrize(("kind", "state"), PAIRS, ids=[f"{k}@{s}" for k, s in PAIRS])
def test_every_transition(kind: str, state: SessionState) -> None:
    expected = EXPECTED.get((kind, state))
    if expected is None:
        with pytest.raises(TransitionError, match="not allowed"):
            next_state(state, EVENTS[kind])
    else:
        assert next_state(state, EVENTS[kind]) is expected


def test_table_and_expectations_agree() -> None:
    table = {(k, s): t for k, states in TRANSITIONS.items() for s, t in states.items()}
    assert table == EXPECTED


def _reaction(action: str, rate: float | None = None) -> Reaction:
    return Reaction(
        at=T0, symptoms=["flushing"], severity="mild", action=action, rate_ml_per_h=rate
    )


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        (S.INFUSING, "none", S.INFUSING),
        (S.INFUSING, "slowed", S.INFUSING),
        (S.INFUSING, "paused", S.PAUSED),
        (S.INFUSING, "stopped", S.STOPPED),
        (S.PAUSED, "paused", S.PAUSED),
        (S.PAUSED, "stopped", S.STOPPED),
        (S.INFUSION_ENDED, "none", S.INFUSION_ENDED),
        (S.OBSERVING, "none", S.OBSERVING),
    ],
)
def test_reactions(state: SessionState, action: str, expected: SessionState) -> None:
    rate = 20.0 if action == "slowed" else None
    assert next_state(state, _reaction(action, rate)) is expected


@pytest.mark.parametrize("state", [S.SCHEDULED, S.CHECKED_IN, S.IV_PLACED, S.DISCHARGED])
def test_reaction_outside_the_infusion_is_refused(state: SessionState) -> None:
    with pytest.raises(TransitionError):
        next_state(state, _reaction("none"))


def test_reaction_that_stops_needs_a_running_infusion() -> None:
    with pytest.raises(TransitionError) as info:
        next_state(S.OBSERVING, _reaction("stopped"))
    assert info.value.element == "action"


def _session(*events: object, observation: int = 60) -> InfusionSession:
    s = InfusionSession(
        id="s1", order_id="o1", patient="Patient/p1", drug_key="ocrelizumab", created_at=T0
    )
    for i, e in enumerate(events):
        s = record(
            s, e, event_id=f"e{i}", now=T0 + timedelta(hours=8), observation_minutes=observation
        )  # type: ignore[arg-type]
    return s


def _through_infusion_end(end: datetime) -> list[object]:
    return [
        CheckIn(at=T0),
        IvInsertion(at=T0 + timedelta(minutes=5), site="arm", gauge=20),
        InfusionStart(at=T0 + timedelta(minutes=10), rate_ml_per_h=40),
        InfusionEnd(at=end, dose_given=MG, volume_ml=500),
    ]


def test_discharge_waits_for_the_observation_time() -> None:
    end = T0 + timedelta(hours=3)
    s = _session(*_through_infusion_end(end))
    with pytest.raises(TransitionError, match="60-minute"):
        record(
            s,
            Discharge(at=end + timedelta(minutes=30)),
            event_id="d",
            now=end + timedelta(hours=2),
            observation_minutes=60,
        )
    ok = record(
        s,
        Discharge(at=end + timedelta(minutes=61)),
        event_id="d",
        now=end + timedelta(hours=2),
        observation_minutes=60,
    )
    assert ok.state is S.DISCHARGED


def test_early_discharge_with_override_reason_is_kept() -> None:
    end = T0 + timedelta(hours=3)
    s = _session(*_through_infusion_end(end))
    done = record(
        s,
        Discharge(at=end + timedelta(minutes=5), override_reason="patient declined observation"),
        event_id="d",
        now=end + timedelta(hours=1),
        observation_minutes=60,
    )
    assert done.state is S.DISCHARGED
    assert done.events[-1].event.override_reason == "patient declined observation"  # type: ignore[union-attr]


def test_events_must_be_in_time_order_and_not_in_the_future() -> None:
    s = _session(CheckIn(at=T0 + timedelta(minutes=10)))
    with pytest.raises(TransitionError, match="before the previous event") as info:
        record(
            s,
            Vitals(at=T0, heart_rate_per_min=70),
            event_id="v",
            now=T0 + timedelta(hours=1),
            observation_minutes=0,
        )
    assert info.value.element == "at"
    with pytest.raises(TransitionError, match="in the future"):
        record(
            s,
            Vitals(at=T0 + timedelta(hours=2), heart_rate_per_min=70),
            event_id="v",
            now=T0 + timedelta(hours=1),
            observation_minutes=0,
        )


@pytest.mark.parametrize(
    "bad",
    [
        {"heart_rate_per_min": 400},
        {"spo2_percent": 101},
        {"temperature_c": 50},
        {"systolic_mmhg": 120},
        {"systolic_mmhg": 80, "diastolic_mmhg": 120},
        {},
    ],
)
def test_impossible_vitals_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Vitals(at=T0, **bad)
