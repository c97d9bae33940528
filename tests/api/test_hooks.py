"""The rest-hook Subscription endpoint and its shared secret."""

from __future__ import annotations

import respx
from fastapi.testclient import TestClient
from pydantic import SecretStr

from harness.fhir_payloads import medication_request
from harness.identity import ISSUER_FOR_TESTS, signed_in_app
from services.infusion_bridge.settings import Settings
from tests.conftest import FAKE_EHR

FHIR = {"Content-Type": "application/fhir+json"}


def test_hook_put_and_delete_without_secret_configured(client: TestClient) -> None:
    r = client.put("/hooks/ehr/MedicationRequest/h1", json=medication_request(), headers=FHIR)
    assert r.status_code == 201, r.text
    assert client.get("/orders/h1").json()["source"] == "subscription"
    assert client.delete("/hooks/ehr/MedicationRequest/h1").status_code == 204
    assert client.get("/orders/h1").json()["deleted"] is True


def test_hook_secret_is_enforced(settings: Settings) -> None:
    settings.hook_secret = SecretStr("s3cret")
    with TestClient(signed_in_app(settings)) as c:
        denied = c.put("/hooks/ehr/MedicationRequest/h2", json=medication_request(), headers=FHIR)
        assert denied.status_code == 401
        assert denied.json()["issue"][0]["code"] == "login"
        wrong = c.put(
            "/hooks/ehr/MedicationRequest/h2",
            json=medication_request(),
            headers=FHIR | {"X-Infusion-Hook-Secret": "nope"},
        )
        assert wrong.status_code == 401
        staff = ISSUER_FOR_TESTS.headers()
        assert c.get("/orders", headers=staff).json()["total"] == 0
        ok = c.put(
            "/hooks/ehr/MedicationRequest/h2",
            json=medication_request(),
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
