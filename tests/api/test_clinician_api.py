"""Clinician reads: session list and full record, patient history, FHIR search and reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline, run_session, ts

FHIR = {"Content-Type": "application/fhir+json"}
DAY1 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
DAY2 = datetime(2026, 10, 19, 8, 0, tzinfo=UTC)


@pytest.fixture
def finished(client: TestClient) -> dict[str, Any]:
    """Patient pat-1: two finished ocrelizumab sessions and one open one; pat-2: one."""
    client.put("/fhir/MedicationRequest/o1", json=medication_request(id="o1"), headers=FHIR)
    other = medication_request(subject={"reference": "Patient/pat-2"})
    client.put("/fhir/MedicationRequest/o2", json=other | {"id": "o2"}, headers=FHIR)
    first = run_session(client, "o1", completed_timeline(DAY1, vitals=3))
    second = run_session(client, "o1", completed_timeline(DAY2, vitals=3))
    open_ = run_session(client, "o1", [{"type": "check-in", "at": ts(DAY2 + timedelta(days=2), 0)}])
    theirs = run_session(client, "o2", completed_timeline(DAY1, vitals=1))
    return {
        "first": first["id"],
        "second": second["id"],
        "open": open_["id"],
        "theirs": theirs["id"],
    }


def test_session_list_filters_and_pages(client: TestClient, finished: dict[str, Any]) -> None:
    everything = client.get("/sessions").json()
    assert everything["total"] == 4
    mine = client.get("/sessions", params={"patient": "pat-1"}).json()
    assert [s["id"] for s in mine["items"]] == [
        finished["open"],
        finished["second"],
        finished["first"],
    ]
    done = client.get("/sessions", params={"patient": "pat-1", "state": "discharged"}).json()
    assert done["total"] == 2
    assert {s["delivery"] for s in done["items"]} == {"pending"}
    ranged = client.get(
        "/sessions", params={"since": "2026-10-01T00:00:00Z", "until": "2026-10-20T00:00:00Z"}
    ).json()
    assert [s["id"] for s in ranged["items"]] == [finished["second"]]
    page = client.get("/sessions", params={"limit": 1, "offset": 1}).json()
    assert len(page["items"]) == 1
    assert client.get("/sessions", params={"drug": "natalizumab"}).json()["total"] == 0
    assert client.get("/sessions", params={"since": "yesterday"}).status_code == 400


def test_full_session_record(client: TestClient, finished: dict[str, Any]) -> None:
    record = client.get(f"/sessions/{finished['second']}").json()
    assert record["order"]["drug"]["key"] == "ocrelizumab"
    assert record["order"]["dose"] == {"value": 600.0, "unit": "mg"}
    assert len(record["vitals"]) == 3
    assert [p["event"]["drug"] for p in record["premedications"]] == [
        "methylprednisolone",
        "diphenhydramine",
    ]
    assert record["reactions"] == []
    assert record["documented_by"] == ["RN Test"]
    statuses = sorted(a["status"] for a in record["administrations"])
    assert statuses == ["completed", "completed", "completed"]  # infusion + two premeds
    assert record["deliveries"][0]["status"] == "pending"


def test_patient_history_totals_and_next_due(client: TestClient, finished: dict[str, Any]) -> None:
    history = client.get("/patients/pat-1/infusions").json()
    assert history["patient"] == "Patient/pat-1"
    assert len(history["sessions"]) == 3
    (ocrelizumab,) = history["drugs"]
    assert ocrelizumab["drug"] == "ocrelizumab"
    assert ocrelizumab["total_dose"] == [{"value": 1200.0, "unit": "mg"}]
    assert len(ocrelizumab["doses"]) == 2
    last = DAY2 + timedelta(minutes=35)
    assert ocrelizumab["last_given"] == last.date().isoformat()
    assert ocrelizumab["next_due"] == (last.date() + timedelta(weeks=24)).isoformat()
    assert "the order's timing: every 24 wk after the last dose" in ocrelizumab["rule"]
    assert client.get("/patients/nobody/infusions").json() == {
        "patient": "Patient/nobody",
        "patient_name": None,
        "patient_birth_date": None,
        "sessions": [],
        "drugs": [],
        "measurements": [],
    }


def test_fhir_search_by_patient_date_and_category(
    client: TestClient, finished: dict[str, Any]
) -> None:
    mas = client.get("/fhir/MedicationAdministration", params={"patient": "Patient/pat-1"}).json()
    assert mas["resourceType"] == "Bundle"
    assert mas["type"] == "searchset"
    assert mas["total"] == 6  # two sessions x (infusion + two premedications)
    assert {link["relation"] for link in mas["link"]} == {"self", "first"}
    october = client.get(
        "/fhir/MedicationAdministration",
        params={"subject": "pat-1", "effective-time": "ge2026-10-01"},
    ).json()
    assert october["total"] == 3  # the October session: infusion + two premedications
    vitals = client.get(
        "/fhir/Observation",
        params={"patient": "pat-1", "category": "vital-signs", "date": "2026-05-04"},
    ).json()
    assert vitals["total"] == 3 * 5
    assert all(e["resource"]["subject"]["reference"] == "Patient/pat-1" for e in vitals["entry"])
    none = client.get(
        "/fhir/Observation", params={"patient": "pat-1", "date": "lt2026-01-01"}
    ).json()
    assert none["total"] == 0


def test_fhir_search_paging_and_reads(client: TestClient, finished: dict[str, Any]) -> None:
    page = client.get("/fhir/Observation", params={"patient": "pat-1", "_count": "10"}).json()
    assert page["total"] == 30
    assert len(page["entry"]) == 10
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    page2 = client.get(nxt).json()
    assert len(page2["entry"]) == 10
    assert not {e["resource"]["id"] for e in page["entry"]} & {
        e["resource"]["id"] for e in page2["entry"]
    }
    obs = page["entry"][0]["resource"]
    read = client.get(f"/fhir/Observation/{obs['id']}")
    assert read.status_code == 200
    assert read.json() == obs
    assert obs["meta"]["versionId"] == "1"
    assert obs["meta"]["lastUpdated"].endswith("+00:00")
    assert read.headers["etag"] == 'W/"1"'
    assert read.headers["last-modified"].endswith(" GMT")
    vread = client.get(f"/fhir/Observation/{obs['id']}/_history/1")
    assert (vread.status_code, vread.json()) == (200, obs)
    assert client.get(f"/fhir/Observation/{obs['id']}/_history/2").status_code == 404
    assert obs["partOf"][0]["reference"].startswith("MedicationAdministration/")
    ma_id = obs["partOf"][0]["reference"].split("/")[1]
    assert client.get(f"/fhir/MedicationAdministration/{ma_id}").json()["status"] == "completed"
    assert client.get("/fhir/Observation/nope").status_code == 404
    assert client.get(f"/fhir/MedicationAdministration/{obs['id']}").status_code == 404


@pytest.mark.parametrize(
    ("path", "params", "expression"),
    [
        ("/fhir/Observation", {"colour": "red"}, "colour"),
        ("/fhir/MedicationAdministration", {"date": "2026-01-01"}, "date"),
        ("/fhir/Observation", {"date": "last week"}, "date"),
        ("/fhir/Observation", {"_count": "ten"}, "_count"),
    ],
)
def test_bad_search_parameters_are_reported(
    client: TestClient, path: str, params: dict[str, str], expression: str
) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == [expression]


def test_session_as_one_bundle(client: TestClient, finished: dict[str, Any]) -> None:
    bundle = client.get(f"/sessions/{finished['first']}/fhir").json()
    assert bundle["type"] == "collection"
    types = sorted({e["resource"]["resourceType"] for e in bundle["entry"]})
    assert types == ["Encounter", "MedicationAdministration", "Observation", "Procedure"]
    assert all(
        e["fullUrl"].endswith(f"/{e['resource']['resourceType']}/{e['resource']['id']}")
        for e in bundle["entry"]
    )
    assert client.get(f"/sessions/{finished['open']}/fhir").status_code == 404
    assert client.get("/sessions/nope/fhir").status_code == 404


def test_far_future_search_date_is_a_400_not_a_crash(client: TestClient) -> None:
    r = client.get("/fhir/Observation", params={"date": "9999-12-31"})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["date"]
