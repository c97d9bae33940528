"""Arriving orders pull a patient's EHR history at most once a minute, never twice at once."""

from __future__ import annotations

import pytest

from services.infusion_bridge.usecases import ehr_history
from services.infusion_bridge.usecases.ehr_history import REPULL_AFTER_SECONDS, OrderPulls


class Clock:
    now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_burst_of_orders_for_one_patient_is_one_pull(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(ehr_history, "time", clock)
    pulls = OrderPulls()
    assert pulls.due("Patient/1")
    assert not pulls.due("Patient/1")  # the same minute
    assert pulls.due("Patient/2")  # another patient
    clock.now += REPULL_AFTER_SECONDS + 1
    assert pulls.due("Patient/1")
    pulls.running.add("Patient/2")
    clock.now += REPULL_AFTER_SECONDS + 1
    assert not pulls.due("Patient/2")  # still being pulled


def test_forgets_old_patients_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(ehr_history, "time", clock)
    pulls = OrderPulls(limit=10)
    for n in range(10):
        assert pulls.due(f"Patient/{n}")
    clock.now += REPULL_AFTER_SECONDS + 1
    assert pulls.due("Patient/new")
    assert len(pulls._started) == 1
