"""Batch and transaction Bundles of orders."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from harness.fhir_payloads import dose, medication_request, premedication

FHIR = {"Content-Type": "application/fhir+json"}


def bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def post_entry(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": "MedicationRequest"},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def test_transaction_with_urn_uuid_premedication_links(client: TestClient) -> None:
    urn = f"urn:uuid:{uuid.uuid4()}"
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction",
            [
                post_entry(medication_request(), urn),
                post_entry(premedication(urn)),
                {
                    "resource": medication_request(id="put-1"),
                    "request": {"method": "PUT", "url": "MedicationRequest/put-1"},
                },
            ],
        ),
        headers=FHIR,
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created"]
    infusion_id = result["entry"][0]["response"]["location"].split("/")[1]
    premed_id = result["entry"][1]["response"]["location"].split("/")[1]
    view = client.get(f"/orders/{infusion_id}").json()
    assert [o["id"] for o in view["linked_orders"]] == [premed_id]
    assert client.get(f"/orders/{premed_id}").json()["based_on"] == [
        f"MedicationRequest/{infusion_id}"
    ]


def test_one_bad_entry_rejects_the_whole_transaction(client: TestClient) -> None:
    bad = medication_request()
    dose(bad)["value"] = -5
    r = client.post(
        "/fhir",
        json=bundle("transaction", [post_entry(medication_request()), post_entry(bad)]),
        headers=FHIR,
    )
    assert 400 <= r.status_code < 500
    expressions = [e for i in r.json()["issue"] for e in i.get("expression", [])]
    assert any(e.startswith("Bundle.entry[1].resource") for e in expressions), expressions
    assert client.get("/orders").json()["total"] == 0


def test_batch_gives_each_entry_its_own_outcome(client: TestClient) -> None:
    bad = medication_request(subject=None)
    r = client.post(
        "/fhir",
        json=bundle(
            "batch",
            [
                post_entry(medication_request()),
                post_entry(bad),
                {
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": {"resourceType": "Patient"},
                },
            ],
        ),
        headers=FHIR,
    )
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"].startswith("422")
    issue = entries[1]["response"]["outcome"]["issue"][0]
    assert issue["expression"][0].startswith("Bundle.entry[1].resource.subject")
    assert entries[2]["response"]["status"].startswith("400")
    assert client.get("/orders").json()["total"] == 1


def test_batch_get_and_delete_entries(client: TestClient) -> None:
    client.put("/fhir/MedicationRequest/b1", json=medication_request(id="b1"), headers=FHIR)
    r = client.post(
        "/fhir",
        json=bundle(
            "batch",
            [
                {"request": {"method": "GET", "url": "MedicationRequest/b1"}},
                {"request": {"method": "DELETE", "url": "MedicationRequest/b1"}},
            ],
        ),
        headers=FHIR,
    )
    entries = r.json()["entry"]
    assert entries[0]["resource"]["id"] == "b1"
    assert entries[1]["response"]["status"] == "204 No Content"
    assert client.get("/fhir/MedicationRequest/b1").status_code == 410


def test_bundle_type_and_shape_errors(client: TestClient) -> None:
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"}, headers=FHIR)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Bundle.type"]
    r = client.post("/fhir", json=medication_request(), headers=FHIR)
    assert r.status_code == 400
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction", [{"request": {"method": "PATCH", "url": "MedicationRequest/x"}}]
        ),
        headers=FHIR,
    )
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]


def _tx(*entries: dict[str, Any]) -> dict[str, Any]:
    return bundle("transaction", list(entries))


def test_transaction_failing_while_writing_changes_nothing(client: TestClient) -> None:
    put = {
        "resource": medication_request(id="tx-good"),
        "request": {"method": "PUT", "url": "MedicationRequest/tx-good"},
    }
    bad_condition = {
        "resource": medication_request(),
        "request": {"method": "POST", "url": "MedicationRequest", "ifNoneExist": "foo=bar"},
    }
    r = client.post("/fhir", json=_tx(put, bad_condition), headers=FHIR)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[1].request.ifNoneExist"]
    unknown = {"request": {"method": "GET", "url": "MedicationRequest/nobody"}}
    r = client.post("/fhir", json=_tx(put, unknown), headers=FHIR)
    assert r.status_code == 404
    assert client.get("/fhir/MedicationRequest/tx-good").status_code == 404


def test_conditional_create_in_a_transaction_links_premeds_to_the_existing_order(
    client: TestClient,
) -> None:
    infusion = medication_request()
    ident = infusion["identifier"][0]
    first = client.post("/fhir/MedicationRequest", json=infusion, headers=FHIR).json()["id"]
    urn = f"urn:uuid:{uuid.uuid4()}"
    again = {
        "fullUrl": urn,
        "resource": infusion,
        "request": {
            "method": "POST",
            "url": "MedicationRequest",
            "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
        },
    }
    r = client.post("/fhir", json=_tx(again, post_entry(premedication(urn))), headers=FHIR)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["200 OK", "201 Created"]
    assert r.json()["entry"][0]["response"]["location"].startswith(f"MedicationRequest/{first}/")
    view = client.get(f"/orders/{first}").json()
    assert len(view["linked_orders"]) == 1
    assert client.get("/orders").json()["total"] == 2
