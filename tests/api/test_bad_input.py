"""Every class of bad input: a 4xx OperationOutcome naming the element, and nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.fhir_payloads import RXNORM, SNOMED, UCUM, dose, medication_request
from harness.identity import signed_in_client
from services.infusion_bridge.domain.catalog import DEFAULT_CATALOG_PATH
from services.infusion_bridge.settings import Settings

FHIR = {"Content-Type": "application/fhir+json"}


def _with(path: str, value: Any):
    def edit(body: dict[str, Any]) -> dict[str, Any]:
        target = body
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is None:
            target.pop(keys[-1])
        else:
            target[keys[-1]] = value
        return body

    return edit


def _unit(unit: str):
    def edit(body: dict[str, Any]) -> dict[str, Any]:
        dose(body).update(unit=unit, code=unit)
        return body

    return edit


CASES = {
    "invalid FHIR (dose value not a number)": (
        _with("dosageInstruction.0.doseAndRate.0.doseQuantity.value", "abc"),
        400,
        "doseQuantity",
    ),
    "missing patient": (_with("subject", None), 422, "MedicationRequest.subject"),
    "subject is not a patient": (
        _with("subject", {"reference": "Group/g1"}),
        422,
        "MedicationRequest.subject",
    ),
    "missing drug": (_with("medicationCodeableConcept", None), 4, "MedicationRequest.medication"),
    "unknown drug code": (
        _with("medicationCodeableConcept", {"coding": [{"system": RXNORM, "code": "999999999"}]}),
        422,
        "MedicationRequest.medication",
    ),
    "missing dose": (
        _with("dosageInstruction.0.doseAndRate", None),
        422,
        "MedicationRequest.dosageInstruction",
    ),
    "zero dose": (
        _with("dosageInstruction.0.doseAndRate.0.doseQuantity.value", 0),
        422,
        "doseQuantity",
    ),
    "unit that does not fit the drug": (_unit("mL"), 422, "doseQuantity"),
    "mg/m2 for ocrelizumab": (_unit("mg/m2"), 422, "doseQuantity"),
    "oral route for an infusion drug": (
        _with("dosageInstruction.0.route", {"coding": [{"system": SNOMED, "code": "26643006"}]}),
        422,
        "MedicationRequest.dosageInstruction[0].route",
    ),
    "status outside the value set": (_with("status", "ready-to-go"), 4, "MedicationRequest.status"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_order_is_refused_and_nothing_is_stored(client: TestClient, case: str) -> None:
    edit, status, expression = CASES[case]
    body = edit(medication_request())
    for response in (
        client.post("/fhir/MedicationRequest", json=body, headers=FHIR),
        client.put("/fhir/MedicationRequest/bad-1", json=body | {"id": "bad-1"}, headers=FHIR),
    ):
        assert str(response.status_code).startswith(str(status)), response.text
        assert 400 <= response.status_code < 500
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
        assert any(expression in e for e in expressions), expressions
    assert client.get("/orders", params={"include_deleted": "true"}).json()["total"] == 0


@pytest.mark.parametrize(
    ("payload", "expression"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        (b'{"resourceType": "Patient"}', "resourceType"),
        (b'{"status": "active"}', "resourceType"),
    ],
)
def test_malformed_bodies_get_400(
    client: TestClient, payload: bytes, expression: str | None
) -> None:
    r = client.post("/fhir/MedicationRequest", content=payload, headers=FHIR)
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["severity"] == "error"
    if expression:
        assert issue["expression"] == [expression]


def test_put_with_mismatched_id_is_400(client: TestClient) -> None:
    r = client.put("/fhir/MedicationRequest/a", json=medication_request(id="b"), headers=FHIR)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["id"]


def test_invalid_id_is_400(client: TestClient) -> None:
    r = client.put("/fhir/MedicationRequest/" + "x" * 65, json=medication_request(), headers=FHIR)
    assert r.status_code == 400


def test_oversized_body_is_413_and_not_stored(settings: Settings) -> None:
    settings.max_body_bytes = 2048
    body = medication_request(note=[{"text": "x" * 4096}])
    with signed_in_client(settings) as c:
        r = c.post("/fhir/MedicationRequest", json=body, headers=FHIR)
        assert r.status_code == 413
        assert c.get("/orders").json()["total"] == 0


def test_premedication_may_be_oral(client: TestClient) -> None:
    from harness.fhir_payloads import premedication

    body = premedication(
        "MedicationRequest/x", rxnorm="161", display="acetaminophen", dose_mg=650, route="26643006"
    )
    body["id"] = "p-oral"
    assert client.put("/fhir/MedicationRequest/p-oral", json=body, headers=FHIR).status_code == 201
    unit = dose(body)
    assert unit["system"] == UCUM


def test_catalog_comes_from_the_configured_file(settings: Settings, tmp_path: Any) -> None:
    catalog = json.loads(DEFAULT_CATALOG_PATH.read_text())
    catalog["drugs"] = [d for d in catalog["drugs"] if d["key"] != "ocrelizumab"]
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    settings.catalog_path = tmp_path / "catalog.json"
    with signed_in_client(settings) as c:
        r = c.put("/fhir/MedicationRequest/x", json=medication_request(id="x"), headers=FHIR)
    assert r.status_code == 422
    assert r.json()["issue"][0]["code"] == "code-invalid"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [{"request": "x"}]}),
        (
            "POST",
            "/fhir",
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {
                        "resource": medication_request(),
                        "request": {"method": "POST", "url": "MedicationRequest", "ifNoneExist": 5},
                    }
                ],
            },
        ),
        ("POST", "/fhir/MedicationRequest", medication_request(meta={"versionId": "9" * 25})),
        ("POST", "/fhir/MedicationRequest", medication_request(medicationReference="x")),
        ("GET", "/orders?offset=99999999999999999999", None),
        ("POST", "/deliveries/99999999999999999999/retry", None),
        ("GET", "/sessions?since=2026-01-01T00:00:00", None),
    ],
)
def test_odd_inputs_never_give_500(
    client: TestClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """Shapes found by poking the API: each once raised deep inside and answered 500."""
    r = client.request(method, path, content=json.dumps(body) if body else None, headers=FHIR)
    assert r.status_code < 500, r.text
    if r.status_code == 200 and r.json().get("type") == "batch-response":
        assert r.json()["entry"][0]["response"]["status"].startswith("400")


def test_implausible_dose_is_refused(client: TestClient) -> None:
    body = medication_request()
    dose(body)["value"] = 60_000  # 100x the 600 mg dose: a typo, not an order
    r = client.post("/fhir/MedicationRequest", json=body, headers=FHIR)
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["code"] == "business-rule"
    assert "implausible" in issue["diagnostics"]
    assert client.get("/orders").json()["total"] == 0
