"""JSON views of cached orders: fields, filters, paging, linked premedications."""

from __future__ import annotations

from fastapi.testclient import TestClient

from harness.fhir_payloads import RXNORM, medication_request, premedication

FHIR = {"Content-Type": "application/fhir+json"}


def test_order_view_shows_what_a_nurse_needs(client: TestClient) -> None:
    client.put("/fhir/MedicationRequest/ocr-v", json=medication_request(id="ocr-v"), headers=FHIR)
    view = client.get("/orders/ocr-v").json()
    assert view["patient"] == "Patient/pat-1"
    assert view["drug"]["key"] == "ocrelizumab"
    assert view["drug"]["rxnorm"] == "1876366"
    assert view["dose"] == {"value": 600.0, "unit": "mg"}
    assert view["route"]
    assert view["rate"]["numerator"] == {"value": 40.0, "unit": "mL/h"}
    assert view["schedule"]["period"] == 24
    assert view["schedule"]["period_unit"] == "wk"
    assert (view["status"], view["id"], view["version"]) == ("active", "ocr-v", 1)


def test_list_filters_and_pages_newest_first(client: TestClient) -> None:
    for i in range(5):
        client.put(
            f"/fhir/MedicationRequest/o{i}", json=medication_request(id=f"o{i}"), headers=FHIR
        )
    natalizumab = medication_request(
        subject={"reference": "Patient/pat-2"},
        medicationCodeableConcept={"coding": [{"system": RXNORM, "code": "354770"}]},
        status="on-hold",
    )
    natalizumab["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 300
    client.put("/fhir/MedicationRequest/nat", json=natalizumab | {"id": "nat"}, headers=FHIR)

    page = client.get("/orders", params={"limit": 2}).json()
    assert page["total"] == 6
    assert [o["id"] for o in page["items"]] == ["nat", "o4"]
    page2 = client.get("/orders", params={"limit": 2, "offset": 2}).json()
    assert [o["id"] for o in page2["items"]] == ["o3", "o2"]
    assert [
        o["id"] for o in client.get("/orders", params={"patient": "pat-2"}).json()["items"]
    ] == ["nat"]
    assert client.get("/orders", params={"status": "on-hold"}).json()["total"] == 1
    assert client.get("/orders", params={"drug": "natalizumab"}).json()["total"] == 1
    assert client.get("/orders", params={"drug": "354770"}).json()["total"] == 1
    assert client.get("/orders", params={"drug": "ocrelizumab"}).json()["total"] == 5


def test_bad_paging_parameters_are_400(client: TestClient) -> None:
    r = client.get("/orders", params={"limit": 0})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["limit"]


def test_premedication_orders_are_linked_both_ways(client: TestClient) -> None:
    client.put("/fhir/MedicationRequest/inf", json=medication_request(id="inf"), headers=FHIR)
    client.put(
        "/fhir/MedicationRequest/pre",
        json=premedication(
            "MedicationRequest/inf",
            rxnorm="20610",
            display="cetirizine",
            dose_mg=10,
            route="26643006",
        )
        | {"id": "pre"},
        headers=FHIR,
    )
    infusion = client.get("/orders/inf").json()
    assert [(o["id"], o["role"]) for o in infusion["linked_orders"]] == [("pre", "premedication")]
    premed = client.get("/orders/pre").json()
    assert premed["role"] == "premedication"
    assert premed["based_on"] == ["MedicationRequest/inf"]
