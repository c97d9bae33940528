"""The rest-hook Subscription endpoint and its shared secret."""

from __future__ import annotations

from typing import Any

import respx
from fastapi.testclient import TestClient
from pydantic import SecretStr

from harness.fhir_payloads import medication_request
from harness.identity import ISSUER_FOR_TESTS, signed_in_app
from services.infusion_bridge.settings import Settings
from tests.conftest import FAKE_EHR

FHIR = {"Content-Type": "application/fhir+json"}


def test_hook_put_and_delete_without_secret_configured(client: TestClient) -> None:
    r = client.put(
        "/hooks/ehr/MedicationRequest/h1", json=medication_request(id="h1"), headers=FHIR
    )
    assert r.status_code == 201, r.text
    assert client.get("/orders/h1").json()["source"] == "subscription"
    assert client.delete("/hooks/ehr/MedicationRequest/h1").status_code == 204
    assert client.get("/orders/h1").json()["deleted"] is True


def test_ehr_versions_order_the_deliveries(client: TestClient) -> None:
    """On the rest-hook path meta.versionId is the EHR's: repeats are no-ops, older
    versions (out-of-order deliveries) are ignored; the server keeps its own versions."""

    def deliver(status: str, version: str) -> Any:
        body = medication_request(id="ehr-1", status=status, meta={"versionId": version})
        return client.put("/hooks/ehr/MedicationRequest/ehr-1", json=body, headers=FHIR)

    assert deliver("active", "3").status_code == 201
    again = deliver("active", "3")
    assert (again.status_code, again.headers["etag"]) == (200, 'W/"1"')
    stale = deliver("cancelled", "2")
    assert (stale.status_code, stale.headers["etag"]) == (200, 'W/"1"')
    view = client.get("/orders/ehr-1").json()
    assert (view["status"], view["version"], view["source_version"]) == ("active", 1, 3)
    newer = deliver("cancelled", "4")
    assert newer.headers["etag"] == 'W/"2"'
    assert newer.json()["meta"]["versionId"] == "2"
    view = client.get("/orders/ehr-1").json()
    assert (view["status"], view["version"], view["source_version"]) == ("cancelled", 2, 4)


def test_hapi_deliveries_if_match_names_the_ehr_version_not_ours(client: TestClient) -> None:
    """HAPI's rest-hook delivery sends If-Match with the EHR's version: on the hook path
    that is no precondition on this server's versions."""
    body = medication_request(id="ehr-3", meta={"versionId": "7"})
    headers = FHIR | {"If-Match": 'W/"7"'}
    r = client.put("/hooks/ehr/MedicationRequest/ehr-3", json=body, headers=headers)
    assert r.status_code == 201, r.text
    gone = client.delete("/hooks/ehr/MedicationRequest/ehr-3", headers={"If-Match": 'W/"8"'})
    assert gone.status_code == 204
    assert client.get("/orders/ehr-3").json()["deleted"] is True


def test_a_client_update_does_not_move_the_ehr_version(client: TestClient) -> None:
    """A client's If-Match/meta on /fhir never becomes the EHR's version (issue 13)."""
    body = medication_request(id="ehr-2", meta={"versionId": "5"})
    client.put("/hooks/ehr/MedicationRequest/ehr-2", json=body, headers=FHIR)
    mine = body | {"status": "on-hold", "meta": {"versionId": "99"}}
    r = client.put("/fhir/MedicationRequest/ehr-2", json=mine, headers=FHIR | {"If-Match": 'W/"1"'})
    assert r.headers["etag"] == 'W/"2"'
    ehr_v6 = body | {"status": "cancelled", "meta": {"versionId": "6"}}
    r = client.put("/hooks/ehr/MedicationRequest/ehr-2", json=ehr_v6, headers=FHIR)
    view = client.get("/orders/ehr-2").json()
    assert (view["status"], view["version"], view["source_version"]) == ("cancelled", 3, 6)


def test_hook_secret_is_enforced(settings: Settings) -> None:
    settings.hook_secret = SecretStr("s3cret")
    with TestClient(signed_in_app(settings)) as c:
        denied = c.put(
            "/hooks/ehr/MedicationRequest/h2", json=medication_request(id="h2"), headers=FHIR
        )
        assert denied.status_code == 401
        assert denied.json()["issue"][0]["code"] == "login"
        wrong = c.put(
            "/hooks/ehr/MedicationRequest/h2",
            json=medication_request(id="h2"),
            headers=FHIR | {"X-Infusion-Hook-Secret": "nope"},
        )
        assert wrong.status_code == 401
        staff = ISSUER_FOR_TESTS.headers()
        assert c.get("/orders", headers=staff).json()["total"] == 0
        ok = c.put(
            "/hooks/ehr/MedicationRequest/h2",
            json=medication_request(id="h2"),
            headers=FHIR | {"X-Infusion-Hook-Secret": "s3cret"},
        )
        assert ok.status_code == 201


def test_hook_without_payload_pulls_the_changes(client: TestClient) -> None:
    order = medication_request(
        id="pulled-1", meta={"versionId": "1", "lastUpdated": "2026-11-20T10:00:00+00:00"}
    )
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{"resource": order}],
    }
    with respx.mock(base_url=FAKE_EHR) as ehr:
        search = ehr.get("/MedicationRequest").respond(200, json=page)
        r = client.post("/hooks/ehr")
        assert r.status_code == 200
    assert search.called
    sent = search.calls.last.request.url.params
    assert sent["_sort"] == "_lastUpdated"
    view = client.get("/orders/pulled-1").json()
    assert (view["source"], view["version"]) == ("sync", 1)
