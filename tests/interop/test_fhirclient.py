"""SMART's client-py (``fhirclient``) against the live service: every answer is parsed with
its own strict R4 models (``fhirclient.models``), which raise on anything not R4.

fhirclient has no conditional-create or If-Match call; its ``requests`` session carries
headers for every request, which is how ``If-None-Exist``/``If-Match`` are sent here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from fhirclient.models.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.medicationrequest import MedicationRequest
from fhirclient.server import FHIRNotFoundException, FHIRServer

from harness.fhir_payloads import medication_request


@pytest.fixture
def server(service_base: str, auth_headers: dict[str, str]) -> Iterator[FHIRServer]:
    srv = FHIRServer(None, base_uri=service_base)
    srv.session.headers.update(auth_headers)
    yield srv
    srv.session.close()


def new_order(patient: str) -> MedicationRequest:
    return MedicationRequest(medication_request(subject={"reference": f"Patient/{patient}"}))


def test_capabilities(server: FHIRServer) -> None:
    cs = CapabilityStatement(server.request_json("metadata"))
    orders = next(r for r in cs.rest[0].resource if r.type == "MedicationRequest")
    assert {i.code for i in orders.interaction} >= {"read", "vread", "update", "create"}
    assert orders.conditionalCreate is True


def test_create_read_vread_update_delete(server: FHIRServer, patient: str) -> None:
    created = MedicationRequest(new_order(patient).create(server))
    assert created.meta.versionId == "1"
    read = MedicationRequest.read(created.id, server)
    read.status = "on-hold"  # read-modify-write with the meta it read
    updated = MedicationRequest(read.update(server))
    assert (updated.meta.versionId, updated.status) == ("2", "on-hold")
    v1 = MedicationRequest.read_from(f"MedicationRequest/{created.id}/_history/1", server)
    assert (v1.status, v1.meta.versionId) == ("active", "1")
    history = Bundle.read_from(f"MedicationRequest/{created.id}/_history", server)
    assert [e.request.method for e in history.entry] == ["PUT", "POST"]
    updated.delete(server)
    with pytest.raises(requests.HTTPError) as gone:
        MedicationRequest.read(created.id, server)
    assert gone.value.response.status_code == 410
    with pytest.raises(FHIRNotFoundException):
        MedicationRequest.read("never-was", server)


def test_conditional_create(server: FHIRServer, patient: str) -> None:
    body = new_order(patient)
    ident = body.identifier[0]
    first = MedicationRequest(body.create(server))
    server.session.headers["If-None-Exist"] = f"identifier={ident.system}|{ident.value}"
    try:
        again = MedicationRequest(new_order(patient).create(server))
    finally:
        del server.session.headers["If-None-Exist"]
    assert again.id == first.id


def test_stale_if_match_is_412(server: FHIRServer, patient: str) -> None:
    created = MedicationRequest(new_order(patient).create(server))
    created.status = "on-hold"
    created.update(server)
    created.status = "stopped"
    server.session.headers["If-Match"] = 'W/"1"'
    try:
        with pytest.raises(requests.HTTPError) as refused:
            created.update(server)
    finally:
        del server.session.headers["If-Match"]
    assert refused.value.response.status_code == 412
    assert MedicationRequest.read(created.id, server).status == "on-hold"


def test_transaction(server: FHIRServer, patient: str) -> None:
    bundle = Bundle({"type": "transaction"})
    bundle.entry = []
    for _ in range(2):
        entry = BundleEntry()
        entry.resource = new_order(patient)
        entry.request = BundleEntryRequest({"method": "POST", "url": "MedicationRequest"})
        bundle.entry.append(entry)
    result = Bundle(server.post_json("", bundle.as_json()).json())
    assert result.type == "transaction-response"
    assert [e.response.status for e in result.entry] == ["201 Created"] * 2


def test_search_paging_both_ways_and_summary_count(server: FHIRServer, patient: str) -> None:
    ids = {MedicationRequest(new_order(patient).create(server)).id for _ in range(5)}
    search = MedicationRequest.where({"patient": patient, "_count": "2"})
    pages = list(search.perform_iter(server))
    assert len(pages) == 3
    found = [e.resource for page in pages for e in page.entry or []]
    assert all(isinstance(r, MedicationRequest) for r in found)
    assert {r.id for r in found} == ids
    previous = next(link.url for link in pages[1].link if link.relation == "previous")
    back = Bundle.read_from(previous, server)
    assert [e.resource.id for e in back.entry] == [e.resource.id for e in pages[0].entry]
    counted = Bundle.read_from(f"MedicationRequest?patient={patient}&_summary=count", server)
    assert (counted.total, counted.entry) == (5, None)
