"""FHIR REST as clients expect it (issue 13): conditional create, search and its result
parameters, formats, methods, placeholders. The interop suite drives the same through
real client libraries (tests/interop)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from harness.fhir_payloads import medication_request, premedication

FHIR = {"Content-Type": "application/fhir+json"}
BASE = "http://testserver/fhir"


def create(client: TestClient, body: dict[str, Any], **headers: str) -> Any:
    return client.post("/fhir/MedicationRequest", json=body, headers=FHIR | headers)


def orders_stored(client: TestClient) -> int:
    total: int = client.get("/orders", params={"include_deleted": "true"}).json()["total"]
    return total


@pytest.mark.parametrize(
    "condition",
    [
        "identifier={system}|{value}",
        "identifier={q_system}%7C{value}",
        "MedicationRequest?identifier={q_system}%7C{value}",
        BASE + "/MedicationRequest?identifier={q_system}%7C{value}",
        "identifier={value}",
        "identifier={system}|{value}&status=active",
        "identifier={system}|{value}&patient=Patient/pat-1",
        "identifier={system}|{value}&subject:Patient="
        + quote("http://ehr.test/fhir/Patient/pat-1"),
    ],
)
def test_conditional_create_matches_however_the_client_writes_it(
    client: TestClient, condition: str
) -> None:
    body = medication_request()
    ident = body["identifier"][0]
    header = condition.format(
        system=ident["system"], q_system=quote(ident["system"], safe=""), value=ident["value"]
    )
    first = create(client, body)
    assert first.status_code == 201
    again = create(client, body, **{"If-None-Exist": header})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert orders_stored(client) == 1


def test_conditional_create_that_does_not_match_creates(client: TestClient) -> None:
    body = medication_request()
    ident = body["identifier"][0]
    create(client, body)
    other = f"identifier={ident['system']}|{ident['value']}&status=on-hold"
    r = create(client, medication_request(), **{"If-None-Exist": other})
    assert r.status_code == 201
    assert orders_stored(client) == 2


@pytest.mark.parametrize(
    ("condition", "status"),
    [
        ("colour=red", 400),
        ("identifier=", 400),
        ("", 400),
        ("Patient?identifier=x|y", 400),
        ("subject=http://elsewhere.example/fhir/Patient/pat-1", 400),
    ],
)
def test_bad_conditions_are_refused_naming_the_header(
    client: TestClient, condition: str, status: int
) -> None:
    r = create(client, medication_request(), **{"If-None-Exist": condition})
    assert r.status_code == status, r.text
    assert r.json()["issue"][0]["expression"] == ["If-None-Exist"]
    assert orders_stored(client) == 0


def test_two_matches_are_412(client: TestClient) -> None:
    create(client, medication_request())
    create(client, medication_request())
    r = create(client, medication_request(), **{"If-None-Exist": "status=active"})
    assert r.status_code == 412
    assert orders_stored(client) == 2


def seed(client: TestClient, n: int, patient: str = "pat-1") -> list[str]:
    ids = []
    for _ in range(n):
        r = create(client, medication_request(subject={"reference": f"Patient/{patient}"}))
        ids.append(r.json()["id"])
    return ids


def test_search_orders_by_identifier_patient_status(client: TestClient) -> None:
    seed(client, 2)
    seed(client, 1, patient="pat-2")
    body = medication_request()
    mine = create(client, body).json()["id"]
    ident = body["identifier"][0]
    found = client.get(
        "/fhir/MedicationRequest", params={"identifier": f"{ident['system']}|{ident['value']}"}
    ).json()
    assert (found["total"], found["entry"][0]["resource"]["id"]) == (1, mine)
    assert client.get("/fhir/MedicationRequest", params={"patient": "pat-1"}).json()["total"] == 3
    absolute = {"subject:Patient": f"{BASE}/Patient/pat-2"}
    assert client.get("/fhir/MedicationRequest", params=absolute).json()["total"] == 1
    either = {"_id": f"{mine},nope", "status": "active,on-hold"}
    assert client.get("/fhir/MedicationRequest", params=either).json()["total"] == 1
    assert client.get("/fhir/MedicationRequest", params={"status": "stopped"}).json()["total"] == 0


def test_search_pages_both_ways_and_caps_count(client: TestClient) -> None:
    seed(client, 5)
    page = client.get("/fhir/MedicationRequest", params={"_count": "2"}).json()
    links = {link["relation"]: link["url"] for link in page["link"]}
    assert set(links) == {"self", "first", "next"}
    seen = [e["resource"]["id"] for e in page["entry"]]
    while "next" in links:
        page = client.get(links["next"]).json()
        links = {link["relation"]: link["url"] for link in page["link"]}
        seen += [e["resource"]["id"] for e in page["entry"]]
    assert len(seen) == len(set(seen)) == 5
    back = client.get(links["previous"]).json()
    assert [e["resource"]["id"] for e in back["entry"]] == seen[2:4]
    big = client.get("/fhir/MedicationRequest", params={"_count": "100000"}).json()
    assert len(big["entry"]) == 5
    assert "_count=200" in big["link"][0]["url"]


def test_summary_count_total_and_count_zero(client: TestClient) -> None:
    seed(client, 3)
    for params in ({"_summary": "count"}, {"_count": "0"}):
        r = client.get("/fhir/MedicationRequest", params=params | {"_total": "accurate"}).json()
        assert (r["total"], "entry" in r) == (3, False)


def test_elements_subsets_and_tags(client: TestClient) -> None:
    seed(client, 1)
    r = client.get("/fhir/MedicationRequest", params={"_elements": "identifier"}).json()
    resource = r["entry"][0]["resource"]
    mandatory = {"status", "intent", "medicationCodeableConcept", "subject"}
    assert set(resource) == {"resourceType", "id", "meta", "identifier", *mandatory}
    assert resource["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_post_search_is_the_same_search(client: TestClient) -> None:
    seed(client, 2)
    seed(client, 1, patient="pat-2")
    r = client.post(
        "/fhir/MedicationRequest/_search",
        content="patient=pat-2&_count=5",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1
    assert "patient=pat-2" in r.json()["link"][0]["url"]


def test_unknown_parameters_are_400_unless_lenient(client: TestClient) -> None:
    strict = client.get("/fhir/MedicationRequest", params={"colour": "red"})
    assert (strict.status_code, strict.json()["issue"][0]["expression"]) == (400, ["colour"])
    lenient = client.get(
        "/fhir/MedicationRequest",
        params={"colour": "red", "_summary": "text"},
        headers={"Prefer": "handling=lenient"},
    )
    assert lenient.status_code == 200
    assert "colour" not in lenient.json()["link"][0]["url"]


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"params": {"_format": "xml"}}, 406),
        ({"params": {"_format": "application/fhir+xml"}}, 406),
        ({"headers": {"Accept": "application/fhir+xml"}}, 406),
        ({"params": {"_format": "json"}}, 200),
        ({"headers": {"Accept": "application/fhir+json"}}, 200),
        ({"headers": {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}}, 200),
    ],
)
def test_json_only_is_declared_and_enforced(
    client: TestClient, request_kwargs: dict[str, Any], status: int
) -> None:
    r = client.get("/fhir/metadata", **request_kwargs)
    assert r.status_code == status
    if status == 406:
        assert r.json()["issue"][0]["code"] == "not-supported"


def test_xml_body_is_415(client: TestClient) -> None:
    xml = '<MedicationRequest xmlns="http://hl7.org/fhir"><status value="active"/>'
    xml += "</MedicationRequest>"
    xml_type = {"Content-Type": "application/fhir+xml"}
    r = client.post("/fhir/MedicationRequest", content=xml, headers=xml_type)
    assert r.status_code == 415
    assert r.json()["issue"][0]["code"] == "not-supported"
    assert orders_stored(client) == 0


def test_405_allow_lists_every_method_and_head_works(client: TestClient) -> None:
    create(client, medication_request(id="x"))
    r = client.patch("/fhir/MedicationRequest/x", json={})
    assert r.status_code == 405
    assert [m.strip() for m in r.headers["allow"].split(",")] == ["GET", "HEAD", "PUT", "DELETE"]
    head = client.head("/fhir/metadata")
    assert (head.status_code, head.content) == (200, b"")
    assert int(head.headers["content-length"]) > 0
    order_id = client.get("/fhir/MedicationRequest").json()["entry"][0]["resource"]["id"]
    head = client.head(f"/fhir/MedicationRequest/{order_id}")
    assert (head.status_code, head.headers["etag"]) == (200, 'W/"1"')


def test_unresolved_placeholder_references_are_refused(client: TestClient) -> None:
    urn = f"urn:uuid:{uuid.uuid4()}"
    entry = {
        "resource": premedication(urn),
        "request": {"method": "POST", "url": "MedicationRequest"},
    }
    batch = client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [entry]}, headers=FHIR
    ).json()
    outcome = batch["entry"][0]["response"]
    assert outcome["status"].startswith("4")
    assert outcome["outcome"]["issue"][0]["expression"] == [
        "Bundle.entry[0].resource.basedOn[0].reference"
    ]
    tx = client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]},
        headers=FHIR,
    )
    assert 400 <= tx.status_code < 500
    single = create(client, premedication(urn))
    assert single.status_code == 422
    assert single.json()["issue"][0]["expression"] == ["MedicationRequest.basedOn[0].reference"]
    assert orders_stored(client) == 0


def test_transaction_if_match_is_honoured(client: TestClient) -> None:
    create(client, medication_request(id="t"))
    order_id = client.get("/fhir/MedicationRequest").json()["entry"][0]["resource"]["id"]
    body = client.get(f"/fhir/MedicationRequest/{order_id}").json() | {"status": "on-hold"}
    entry = {
        "resource": body,
        "request": {"method": "PUT", "url": f"MedicationRequest/{order_id}", "ifMatch": 'W/"7"'},
    }
    r = client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]},
        headers=FHIR,
    )
    assert r.status_code == 412
    assert client.get(f"/fhir/MedicationRequest/{order_id}").json()["status"] == "active"


def test_capability_statement_says_what_works(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    assert cs["format"] == ["application/fhir+json", "json"]
    rest = cs["rest"][0]
    orders = next(r for r in rest["resource"] if r["type"] == "MedicationRequest")
    codes = {i["code"] for i in orders["interaction"]}
    assert {"read", "vread", "update", "delete", "create", "search-type"} <= codes
    assert {p["name"] for p in orders["searchParam"]} >= {"identifier", "patient", "status"}
    assert (orders["conditionalCreate"], orders["conditionalUpdate"]) == (True, False)
    assert "capped at 200" in rest["documentation"]
    assert {i["code"] for i in rest["interaction"]} == {"batch", "transaction"}
    audit = next(r for r in rest["resource"] if r["type"] == "AuditEvent")
    assert {p["name"] for p in audit["searchParam"]} == {"patient", "agent", "date"}
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
