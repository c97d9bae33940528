"""Order push over the service's FHIR base: create, update, read, delete, Prefer, versions."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from harness.fhir_payloads import medication_request

FHIR = {"Content-Type": "application/fhir+json"}


def put(client: TestClient, order_id: str, body: dict[str, Any], **headers: str):
    return client.put(f"/fhir/MedicationRequest/{order_id}", json=body, headers=FHIR | headers)


def test_put_creates_then_updates_with_versions_and_headers(client: TestClient) -> None:
    body = medication_request()
    r = put(client, "ocr-1", body)
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith("/fhir/MedicationRequest/ocr-1/_history/1")
    assert r.json()["id"] == "ocr-1"
    assert r.json()["meta"]["versionId"] == "1"

    body["status"] = "on-hold"
    r = put(client, "ocr-1", body)
    assert r.status_code == 200
    assert r.headers["etag"] == 'W/"2"'

    read = client.get("/fhir/MedicationRequest/ocr-1")
    assert read.status_code == 200
    assert read.headers["etag"] == 'W/"2"'
    assert read.json()["status"] == "on-hold"
    assert client.get("/orders/ocr-1").json()["status"] == "on-hold"


def test_ehr_versions_same_is_noop_and_older_is_ignored(client: TestClient) -> None:
    v3 = medication_request(
        id="ocr-2", meta={"versionId": "3", "lastUpdated": "2026-11-20T10:00:00Z"}
    )
    assert put(client, "ocr-2", v3).status_code == 201
    again = put(client, "ocr-2", v3)
    assert again.status_code == 200
    assert again.headers["etag"] == 'W/"3"'

    v2 = medication_request(
        id="ocr-2",
        status="cancelled",
        meta={"versionId": "2", "lastUpdated": "2026-11-19T10:00:00Z"},
    )
    stale = put(client, "ocr-2", v2)
    assert stale.status_code == 200
    assert stale.headers["etag"] == 'W/"3"'
    assert client.get("/orders/ocr-2").json()["status"] == "active"

    v4 = medication_request(
        id="ocr-2",
        status="cancelled",
        meta={"versionId": "4", "lastUpdated": "2026-11-21T10:00:00Z"},
    )
    assert put(client, "ocr-2", v4).status_code == 200
    view = client.get("/orders/ocr-2").json()
    assert (view["status"], view["version"]) == ("cancelled", 4)


def test_post_assigns_id_and_if_none_exist_makes_it_idempotent(client: TestClient) -> None:
    body = medication_request()
    ident = body["identifier"][0]
    cond = {"If-None-Exist": f"identifier={ident['system']}|{ident['value']}"}
    first = client.post("/fhir/MedicationRequest", json=body, headers=FHIR | cond)
    second = client.post("/fhir/MedicationRequest", json=body, headers=FHIR | cond)
    assert first.status_code == 201, first.text
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert client.get("/orders").json()["total"] == 1


def test_prefer_return_minimal_and_operation_outcome(client: TestClient) -> None:
    minimal = client.post(
        "/fhir/MedicationRequest",
        json=medication_request(),
        headers=FHIR | {"Prefer": "return=minimal"},
    )
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert minimal.headers["location"]
    oo = client.post(
        "/fhir/MedicationRequest",
        json=medication_request(),
        headers=FHIR | {"Prefer": "return=OperationOutcome"},
    )
    assert oo.status_code == 201
    assert oo.json()["resourceType"] == "OperationOutcome"


def test_delete_is_recorded_not_lost(client: TestClient) -> None:
    put(client, "ocr-3", medication_request())
    assert client.delete("/fhir/MedicationRequest/ocr-3").status_code == 204
    gone = client.get("/fhir/MedicationRequest/ocr-3")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert client.get("/orders").json()["total"] == 0
    listed = client.get("/orders", params={"include_deleted": "true"}).json()
    assert [o["id"] for o in listed["items"]] == ["ocr-3"]
    assert listed["items"][0]["deleted"] is True
    assert client.get("/orders/ocr-3").json()["version"] == 2


def test_unknown_order_is_404(client: TestClient) -> None:
    r = client.get("/fhir/MedicationRequest/nope")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/orders/nope").status_code == 404
