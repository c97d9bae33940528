"""Drive a whole infusion session through the nurse API (shared by API and live tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

Client = TestClient | httpx.Client


def ts(start: datetime, minutes: float) -> str:
    return (start + timedelta(minutes=minutes)).isoformat()


def completed_timeline(start: datetime, *, vitals: int = 4) -> list[dict[str, Any]]:
    """Check-in to discharge for ocrelizumab 600 mg, with ``vitals`` sets of vital signs and
    the premedications its label requires (a steroid and an antihistamine 30 min before)."""
    events: list[dict[str, Any]] = [
        {"type": "check-in", "at": ts(start, 0), "by": "RN Test"},
        {"type": "iv-insertion", "at": ts(start, 4), "site": "left forearm", "gauge": 20},
        {
            "type": "premedication",
            "at": ts(start, 5),
            "drug": "methylprednisolone",
            "dose": {"value": 100, "unit": "mg"},
            "route": "intravenous",
        },
        {
            "type": "premedication",
            "at": ts(start, 5),
            "drug": "diphenhydramine",
            "dose": {"value": 50, "unit": "mg"},
            "route": "intravenous",
        },
        {"type": "infusion-start", "at": ts(start, 35), "rate_ml_per_h": 40},
    ]
    for i in range(vitals):
        events.append(
            {
                "type": "vitals",
                "at": ts(start, 40 + i * 30),
                "systolic_mmhg": 120 + i,
                "diastolic_mmhg": 78,
                "heart_rate_per_min": 72 + i,
                "respiratory_rate_per_min": 16,
                "temperature_c": 36.8,
                "spo2_percent": 98,
            }
        )
        if i == 0:
            events.append({"type": "rate-change", "at": ts(start, 41), "rate_ml_per_h": 80})
    end = 40 + vitals * 30
    events += [
        {
            "type": "infusion-end",
            "at": ts(start, end),
            "dose_given": {"value": 600, "unit": "mg"},
            "volume_ml": 500,
        },
        {"type": "observation-start", "at": ts(start, end + 1)},
        {"type": "discharge", "at": ts(start, end + 62)},
    ]
    return events


def run_session(client: Client, order_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    created = client.post("/sessions", json={"order_id": order_id})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    last: dict[str, Any] = created.json()
    for event in events:
        r = client.post(f"/sessions/{sid}/events", json=event)
        assert r.status_code == 201, (event, r.text)
        last = r.json()
    return last


def start_of_yesterday() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
