"""Order push over the service's FHIR base: create, update, read, delete, Prefer, versions."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from harness.fhir_payloads import medication_request

FHIR = {"Content-Type": "application/fhir+json"}


def put(client: TestClient, order_id: str, body: dict[str, Any], **headers: str):
    return client.put(f"/fhir/MedicationRequest/{order_id}", json=body, headers=FHIR | headers)


def test_put_creates_then_updates_with_versions_and_headers(client: TestClient) -> None:
    body = medication_request(id="ocr-1")
    r = put(client, "ocr-1", body)
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith("/fhir/MedicationRequest/ocr-1/_history/1")
    assert r.headers["last-modified"].endswith(" GMT")
    assert r.json()["id"] == "ocr-1"
    assert r.json()["meta"]["versionId"] == "1"

    body["status"] = "on-hold"
    r = put(client, "ocr-1", body)
    assert r.status_code == 200
    assert r.headers["etag"] == 'W/"2"'

    read = client.get("/fhir/MedicationRequest/ocr-1")
    assert read.status_code == 200
    assert read.headers["etag"] == 'W/"2"'
    assert read.headers["last-modified"] == r.headers["last-modified"]
    assert read.json()["status"] == "on-hold"
    assert client.get("/orders/ocr-1").json()["status"] == "on-hold"
    location = client.get(r.headers["location"])
    assert (location.status_code, location.json()["status"]) == (200, "on-hold")


def test_read_modify_write_saves_whatever_version_the_body_carries(client: TestClient) -> None:
    """R4 http.html#update: the server ignores meta.versionId/lastUpdated of the body."""
    put(client, "rmw-1", medication_request(id="rmw-1"))
    read = client.get("/fhir/MedicationRequest/rmw-1").json()
    assert read["meta"]["versionId"] == "1"
    read["status"] = "on-hold"  # a client sends back the meta it read
    r = put(client, "rmw-1", read)
    assert (r.status_code, r.headers["etag"]) == (200, 'W/"2"')
    assert client.get("/fhir/MedicationRequest/rmw-1").json()["status"] == "on-hold"
    read["status"] = "active"
    read["meta"] = {"versionId": "99", "lastUpdated": "2001-01-01T00:00:00Z"}
    r = put(client, "rmw-1", read)
    assert r.headers["etag"] == 'W/"3"'
    assert r.json()["meta"]["versionId"] == "3"
    assert not r.json()["meta"]["lastUpdated"].startswith("2001")


def test_if_match_guards_updates_and_deletes(client: TestClient) -> None:
    body = medication_request(id="im-1")
    put(client, "im-1", body)
    ok = put(client, "im-1", body | {"status": "on-hold"}, **{"If-Match": 'W/"1"'})
    assert (ok.status_code, ok.headers["etag"]) == (200, 'W/"2"')
    stale = put(client, "im-1", body | {"status": "stopped"}, **{"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["issue"][0]["code"] == "conflict"
    assert stale.json()["issue"][0]["expression"] == ["If-Match"]
    assert client.get("/fhir/MedicationRequest/im-1").json()["status"] == "on-hold"
    far = put(client, "im-1", body, **{"If-Match": 'W/"99"'})
    assert far.status_code == 412
    assert client.get("/orders/im-1").json()["version"] == 2
    bad = put(client, "im-1", body, **{"If-Match": "yesterday"})
    assert (bad.status_code, bad.json()["issue"][0]["expression"]) == (400, ["If-Match"])
    gone = client.delete("/fhir/MedicationRequest/im-1", headers={"If-Match": 'W/"1"'})
    assert gone.status_code == 412
    assert (
        client.delete("/fhir/MedicationRequest/im-1", headers={"If-Match": 'W/"2"'}).status_code
        == 204
    )


def test_same_content_again_makes_no_new_version(client: TestClient) -> None:
    body = medication_request(id="same-1")
    assert put(client, "same-1", body).headers["etag"] == 'W/"1"'
    again = put(client, "same-1", body)
    assert (again.status_code, again.headers["etag"]) == (200, 'W/"1"')


def test_put_without_id_in_the_body_is_400(client: TestClient) -> None:
    r = put(client, "noid-1", medication_request())
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["id"]
    assert client.get("/fhir/MedicationRequest/noid-1").status_code == 404


def test_vread_and_history_of_an_order(client: TestClient) -> None:
    body = medication_request(id="h-1")
    put(client, "h-1", body)
    put(client, "h-1", body | {"status": "on-hold"})
    client.delete("/fhir/MedicationRequest/h-1")
    v1 = client.get("/fhir/MedicationRequest/h-1/_history/1")
    assert (v1.status_code, v1.json()["status"], v1.headers["etag"]) == (200, "active", 'W/"1"')
    assert v1.json()["meta"]["versionId"] == "1"
    assert client.get("/fhir/MedicationRequest/h-1/_history/2").json()["status"] == "on-hold"
    assert client.get("/fhir/MedicationRequest/h-1/_history/3").status_code == 410
    assert client.get("/fhir/MedicationRequest/h-1/_history/4").status_code == 404
    assert client.get("/fhir/MedicationRequest/h-1/_history/x").status_code == 404
    history = client.get("/fhir/MedicationRequest/h-1/_history").json()
    assert (history["type"], history["total"]) == ("history", 3)
    methods = [e["request"]["method"] for e in history["entry"]]
    assert methods == ["DELETE", "PUT", "POST"]
    assert "resource" not in history["entry"][0]
    assert history["entry"][1]["response"]["etag"] == 'W/"2"'
    assert client.get("/fhir/MedicationRequest/nope/_history").status_code == 404


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
    put(client, "ocr-3", medication_request(id="ocr-3"))
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
