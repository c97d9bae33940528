"""The nurse API: sessions for orders, event validation, and the queued write-back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline, run_session, start_of_yesterday, ts

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def order_id(client: TestClient) -> str:
    r = client.put(
        "/fhir/MedicationRequest/ocr-s", json=medication_request(id="ocr-s"), headers=FHIR
    )
    assert r.status_code == 201
    return "ocr-s"


def test_completed_session_has_timeline_and_a_pending_delivery(
    client: TestClient, order_id: str
) -> None:
    view = run_session(client, order_id, completed_timeline(start_of_yesterday()))
    assert view["state"] == "discharged"
    kinds = [item["event"]["type"] for item in view["timeline"]]
    assert kinds[:5] == [
        "check-in",
        "iv-insertion",
        "premedication",
        "premedication",
        "infusion-start",
    ]
    assert kinds[-1] == "discharge"
    assert [d["status"] for d in view["deliveries"]] == ["pending"]
    assert client.get(f"/sessions/{view['id']}").json()["deliveries"][0]["attempts"] == 0
    listed = client.get("/deliveries", params={"status": "pending"}).json()
    assert [d["session_id"] for d in listed] == [view["id"]]


def test_illegal_transition_is_409_and_changes_nothing(client: TestClient, order_id: str) -> None:
    sid = client.post("/sessions", json={"order_id": order_id}).json()["id"]
    r = client.post(
        f"/sessions/{sid}/events",
        json={"type": "infusion-start", "at": ts(start_of_yesterday(), 0), "rate_ml_per_h": 40},
    )
    assert r.status_code == 409
    issue = r.json()["issue"][0]
    assert issue["code"] == "conflict"
    assert "allowed now: cancel, check-in, not-done" in issue["diagnostics"]
    assert client.get(f"/sessions/{sid}").json()["state"] == "scheduled"
    assert client.get(f"/sessions/{sid}").json()["timeline"] == []


@pytest.mark.parametrize(
    ("event", "element"),
    [
        ({"type": "vitals", "heart_rate_per_min": 500}, "heart_rate_per_min"),
        ({"type": "vitals", "spo2_percent": -1}, "spo2_percent"),
        ({"type": "vitals"}, "vitals"),
        ({"type": "teleport"}, "type"),
        ({"type": "vitals", "heart_rate_per_min": "fast"}, "heart_rate_per_min"),
    ],
)
def test_impossible_values_are_400_and_never_stored(
    client: TestClient, order_id: str, event: dict[str, Any], element: str
) -> None:
    sid = client.post("/sessions", json={"order_id": order_id}).json()["id"]
    client.post(
        f"/sessions/{sid}/events", json={"type": "check-in", "at": ts(start_of_yesterday(), 0)}
    )
    r = client.post(f"/sessions/{sid}/events", json={"at": ts(start_of_yesterday(), 5), **event})
    assert r.status_code == 400, r.text
    expressions = [e for i in r.json()["issue"] for e in i.get("expression", [])]
    assert any(element in e for e in expressions), expressions
    assert len(client.get(f"/sessions/{sid}").json()["timeline"]) == 1


def test_future_and_out_of_order_events_are_refused(client: TestClient, order_id: str) -> None:
    sid = client.post("/sessions", json={"order_id": order_id}).json()["id"]
    base = start_of_yesterday()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = client.post(f"/sessions/{sid}/events", json={"type": "check-in", "at": future})
    assert r.status_code == 409
    assert r.json()["issue"][0]["expression"] == ["at"]
    client.post(f"/sessions/{sid}/events", json={"type": "check-in", "at": ts(base, 10)})
    r = client.post(
        f"/sessions/{sid}/events",
        json={"type": "vitals", "at": ts(base, 0), "heart_rate_per_min": 70},
    )
    assert r.status_code == 409
    assert "time order" in r.json()["issue"][0]["diagnostics"]


def test_discharge_before_observation_needs_override(client: TestClient, order_id: str) -> None:
    events = completed_timeline(start_of_yesterday())
    early = dict(events[-1])
    early["at"] = events[-2]["at"]  # right after the infusion ended (ocrelizumab: 60 min)
    view = run_session(client, order_id, events[:-1])
    r = client.post(f"/sessions/{view['id']}/events", json=early)
    assert r.status_code == 409
    assert "60-minute" in r.json()["issue"][0]["diagnostics"]
    r = client.post(
        f"/sessions/{view['id']}/events", json=early | {"override_reason": "transport waiting"}
    )
    assert r.status_code == 201
    assert r.json()["timeline"][-1]["event"]["override_reason"] == "transport waiting"


def test_unknown_premedication_and_wrong_dose_unit(client: TestClient, order_id: str) -> None:
    sid = client.post("/sessions", json={"order_id": order_id}).json()["id"]
    base = start_of_yesterday()
    client.post(f"/sessions/{sid}/events", json={"type": "check-in", "at": ts(base, 0)})
    r = client.post(
        f"/sessions/{sid}/events",
        json={
            "type": "premedication",
            "at": ts(base, 1),
            "drug": "natalizumab",
            "dose": {"value": 300, "unit": "mg"},
            "route": "intravenous",
        },
    )
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["drug"]


def test_session_needs_an_active_infusion_order(client: TestClient) -> None:
    assert client.post("/sessions", json={"order_id": "nope"}).status_code == 404
    client.put(
        "/fhir/MedicationRequest/held",
        json=medication_request(id="held", status="on-hold"),
        headers=FHIR,
    )
    r = client.post("/sessions", json={"order_id": "held"})
    assert r.status_code == 409
    assert r.json()["issue"][0]["expression"] == ["order_id"]


def test_not_done_and_cancelled_sessions(client: TestClient, order_id: str) -> None:
    base = start_of_yesterday()
    nd = run_session(
        client,
        order_id,
        [
            {"type": "check-in", "at": ts(base, 0)},
            {"type": "not-done", "at": ts(base, 5), "reason": "active infection"},
        ],
    )
    assert nd["state"] == "not-done"
    assert [d["status"] for d in nd["deliveries"]] == ["pending"]
    cancelled = run_session(client, order_id, [{"type": "cancel", "at": ts(base, 0)}])
    assert cancelled["state"] == "cancelled"
    assert cancelled["deliveries"] == []


def test_retry_unknown_delivery_is_404(client: TestClient) -> None:
    assert client.post("/deliveries/999/retry").status_code == 404
    assert client.get("/deliveries", params={"status": "bogus"}).status_code == 400


def test_event_times_before_1970_are_refused(client: TestClient, order_id: str) -> None:
    sid = client.post("/sessions", json={"order_id": order_id}).json()["id"]
    r = client.post(
        f"/sessions/{sid}/events", json={"type": "check-in", "at": "0001-01-01T00:00:00+14:00"}
    )
    assert r.status_code == 400
    assert any("at" in e for i in r.json()["issue"] for e in i.get("expression", []))


def test_an_event_recorded_elsewhere_is_seen_by_the_next_one(
    client: TestClient, order_id: str
) -> None:
    """This process remembers sessions as it committed them; one changed by another
    process (here: another engine on the same file) is read again in full."""
    from pydantic import TypeAdapter

    from services.infusion_bridge.domain.session_events import SessionEvent
    from services.infusion_bridge.store.db import make_engine
    from services.infusion_bridge.usecases.sessions import append_event

    rt = client.app.state.runtime  # type: ignore[attr-defined]
    timeline = completed_timeline(start_of_yesterday())
    sid = client.post("/sessions", json={"order_id": order_id}).json()["id"]
    for event in timeline[:2]:
        assert client.post(f"/sessions/{sid}/events", json=event).status_code == 201
    assert rt.sessions.get(sid).version == 3  # opened, and two events, all remembered

    elsewhere = make_engine(str(rt.engine.url))
    append_event(
        elsewhere,
        sid,
        TypeAdapter(SessionEvent).validate_python(timeline[2]),
        catalog=rt.catalog,
        identifier_system=rt.settings.identifier_system,
        now=datetime.now(UTC),
    )
    elsewhere.dispose()

    r = client.post(f"/sessions/{sid}/events", json=timeline[3])
    assert r.status_code == 201
    assert [i["event"]["type"] for i in r.json()["timeline"]] == [e["type"] for e in timeline[:4]]
    assert r.json()["version"] == 5


def test_the_answer_to_each_event_is_the_session_as_read_afresh(
    client: TestClient, order_id: str
) -> None:
    """Each answer reuses the timeline items of the one before (events are only appended):
    it must still be exactly what a fresh read shows."""
    sid = client.post("/sessions", json={"order_id": order_id}).json()["id"]
    for event in completed_timeline(start_of_yesterday(), vitals=6):
        answered = client.post(f"/sessions/{sid}/events", json=event)
        assert answered.status_code == 201
        assert answered.json() == client.get(f"/sessions/{sid}").json()
