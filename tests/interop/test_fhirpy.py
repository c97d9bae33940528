"""fhirpy (beda-software), the synchronous client, against the live service.

What fhirpy has no API for is said where it happens: it sends no ``If-Match`` of its own
(a client-wide ``extra_headers`` does it), it maps every 412 to ``MultipleResourcesFound``,
it has no vread/transaction/previous-page calls (``execute`` on the path does), and its
``count()`` adds Aidbox's ``_totalMethod``, which a strict server refuses.
"""

from __future__ import annotations

from typing import Any

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, OperationOutcome, ResourceNotFound
from fhirpy.base.resource import BaseResource

from harness.fhir_payloads import medication_request


@pytest.fixture
def client(service_base: str, auth_headers: dict[str, str]) -> SyncFHIRClient:
    return SyncFHIRClient(service_base, extra_headers=auth_headers)


def new_order(client: SyncFHIRClient, patient: str) -> Any:
    return client.resource(
        "MedicationRequest", **medication_request(subject={"reference": f"Patient/{patient}"})
    )


def test_capabilities(client: SyncFHIRClient) -> None:
    cs = client.execute("metadata", method="get")
    assert (cs["resourceType"], cs["fhirVersion"]) == ("CapabilityStatement", "4.0.1")
    orders = next(r for r in cs["rest"][0]["resource"] if r["type"] == "MedicationRequest")
    assert "identifier" in {p["name"] for p in orders["searchParam"]}


def test_create_read_vread_update_delete(client: SyncFHIRClient, patient: str) -> None:
    order = new_order(client, patient)
    order.save()
    assert isinstance(order, BaseResource)
    assert (order["meta"]["versionId"], order["status"]) == ("1", "active")
    read = client.reference("MedicationRequest", order.id).to_resource()
    assert read["subject"]["reference"] == f"Patient/{patient}"
    read["status"] = "on-hold"  # read-modify-write: fhirpy sends back the meta it read
    read.save()
    assert read["meta"]["versionId"] == "2"
    again = client.resources("MedicationRequest").search(_id=order.id).get()
    assert again["status"] == "on-hold"
    v1 = client.execute(f"MedicationRequest/{order.id}/_history/1", method="get")
    assert (v1["status"], v1["meta"]["versionId"]) == ("active", "1")
    read.delete()
    with pytest.raises(ResourceNotFound):
        client.reference("MedicationRequest", order.id).to_resource()


def test_conditional_create(client: SyncFHIRClient, patient: str) -> None:
    body = medication_request(subject={"reference": f"Patient/{patient}"})
    ident = body["identifier"][0]
    condition = {"identifier": f"{ident['system']}|{ident['value']}"}
    search = client.resources("MedicationRequest").search(**condition)
    first, created = search.get_or_create(client.resource("MedicationRequest", **body))
    second, created_again = search.get_or_create(client.resource("MedicationRequest", **body))
    assert (created, created_again) == (True, False)
    assert first.id == second.id
    assert (
        client.resources("MedicationRequest")
        .search(subject=f"Patient/{patient}")
        .fetch_raw()["total"]
        == 1
    )


def test_stale_if_match_is_412(
    service_base: str, client: SyncFHIRClient, auth_headers: dict[str, str], patient: str
) -> None:
    order = new_order(client, patient)
    order.save()
    order["status"] = "on-hold"
    order.save()  # now version 2
    stale = SyncFHIRClient(service_base, extra_headers=auth_headers | {"If-Match": 'W/"1"'})
    copy = stale.resource("MedicationRequest", **order.serialize())
    copy["status"] = "stopped"
    with pytest.raises(MultipleResourcesFound) as refused:  # fhirpy's name for any 412
        copy.save()
    assert "conflict" in str(refused.value)
    assert client.reference("MedicationRequest", order.id).to_resource()["status"] == "on-hold"


def test_transaction(client: SyncFHIRClient, patient: str) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": medication_request(subject={"reference": f"Patient/{patient}"}),
                "request": {"method": "POST", "url": "MedicationRequest"},
            }
            for _ in range(2)
        ],
    }
    result = client.execute("", method="post", data=bundle)
    assert result["type"] == "transaction-response"
    assert [e["response"]["status"] for e in result["entry"]] == ["201 Created"] * 2


def test_search_paging_both_ways_and_summary_count(
    client: SyncFHIRClient, auth_headers: dict[str, str], patient: str
) -> None:
    ids = set()
    for _ in range(5):
        order = new_order(client, patient)
        order.save()
        ids.add(order.id)
    search = client.resources("MedicationRequest").search(patient=patient).limit(2)
    assert {r.id for r in search} == ids  # fhirpy follows the next links
    first = search.fetch_raw()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.execute(next_url, method="get")
    back_url = next(link["url"] for link in second["link"] if link["relation"] == "previous")
    back = client.execute(back_url, method="get")
    assert [e["resource"]["id"] for e in back["entry"]] == [e.resource.id for e in first.entry]
    summary = client.resources("MedicationRequest").search(patient=patient, _summary="count")
    assert summary.fetch_raw()["total"] == 5
    with pytest.raises(OperationOutcome):  # count() sends _totalMethod (Aidbox's)
        client.resources("MedicationRequest").search(patient=patient).count()
    lenient = SyncFHIRClient(
        client.url, extra_headers=auth_headers | {"Prefer": "handling=lenient"}
    )
    assert lenient.resources("MedicationRequest").search(patient=patient).count() == 5
