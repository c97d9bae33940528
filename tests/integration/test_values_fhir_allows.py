"""Values FHIR allows are stored on both databases, and strings FHIR forbids are refused
with a 400 naming the element: long identifiers, groupIdentifiers and Patient references,
tens of thousands of identifiers, NUL characters. Never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from harness.fhir_payloads import medication_request
from harness.postgres import postgres_server
from harness.staff_auth import StaffAuth, trusting
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.app import create_app
from services.infusion_bridge.settings import Settings
from services.infusion_bridge.store.db import make_engine

FHIR = {"Content-Type": "application/fhir+json"}
LONG = "x" * 5000  # beyond the old varchar(256), and beyond a B-tree entry (~2.7 KB)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["postgresql", "sqlite"])
def client(
    request: pytest.FixtureRequest, tmp_path: Path, keycloak: KeycloakSandbox, staff: StaffAuth
) -> Iterator[TestClient]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    else:
        url = f"sqlite:///{tmp_path / 'values.db'}"
    settings = Settings(
        database_url=url,
        ehr_base_url="http://ehr.test/fhir",
        sync_interval_seconds=0,
        delivery_enabled=False,
        log_format="console",
        ehr_history_on_order=False,  # no background EHR searches against the fake EHR
        **trusting(keycloak),
    )
    with TestClient(create_app(settings)) as c:
        c.auth = staff
        yield c


def _identifier_rows(c: TestClient) -> int:
    engine = c.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows: int = conn.execute(text("SELECT count(*) FROM order_identifiers")).scalar_one()
    return rows


def test_long_identifier_group_and_patient_are_kept_and_matched(client: TestClient) -> None:
    patient = {"reference": f"https://ehr.example.org/{'b' * 900}/fhir/Patient/pat-1"}
    body = medication_request(
        id="long-1",
        identifier=[{"system": f"urn:{LONG}", "value": LONG}],
        groupIdentifier={"system": f"urn:{LONG}", "value": LONG},
        subject=patient,
    )
    created = client.put("/fhir/MedicationRequest/long-1", json=body, headers=FHIR)
    assert created.status_code == 201, created.text
    # linked only within the same patient (#12), so the sibling names the same long reference
    sibling = medication_request(
        id="long-2", groupIdentifier={"system": f"urn:{LONG}", "value": LONG}, subject=patient
    )
    assert (
        client.put("/fhir/MedicationRequest/long-2", json=sibling, headers=FHIR).status_code == 201
    )

    again = client.post(
        "/fhir/MedicationRequest",
        json=medication_request(),
        headers={**FHIR, "If-None-Exist": f"identifier=urn:{LONG}|{LONG}"},
    )
    assert again.status_code == 200
    assert again.json()["id"] == "long-1"
    view = client.get("/orders/long-1").json()
    assert [o["id"] for o in view["linked_orders"]] == ["long-2"]
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:  # the audit trail holds the long patient too (text column)
        audited = conn.execute(
            text("SELECT count(*) FROM audit_events WHERE length(patient) > 900")
        ).scalar_one()
    assert audited >= 3


def test_a_patient_reference_over_the_limit_is_refused_by_name(client: TestClient) -> None:
    body = medication_request(
        id="too-long", subject={"reference": f"https://{'p' * 2000}/Patient/pat-1"}
    )
    r = client.put("/fhir/MedicationRequest/too-long", json=body, headers=FHIR)
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["MedicationRequest.subject.reference"]


def test_tens_of_thousands_of_identifiers_are_all_stored(client: TestClient) -> None:
    count = 25_000  # one multi-row INSERT of these exceeded PostgreSQL's 65,535 parameters
    body = medication_request(
        id="bulk-1", identifier=[{"system": "urn:bulk", "value": f"B{n}"} for n in range(count)]
    )
    raw = orjson.dumps(body)
    assert len(raw) < 5 * 1024 * 1024
    r = client.put("/fhir/MedicationRequest/bulk-1", content=raw, headers=FHIR)
    assert r.status_code == 201, r.text[:500]
    assert _identifier_rows(client) == count
    found = client.post(
        "/fhir/MedicationRequest",
        json=medication_request(),
        headers={**FHIR, "If-None-Exist": f"identifier=urn:bulk|B{count - 1}"},
    )
    assert found.status_code == 200
    assert found.json()["id"] == "bulk-1"


@pytest.mark.parametrize(
    ("where", "expression"),
    [
        ("identifier", "MedicationRequest.identifier[0].value"),
        ("note", "MedicationRequest.note[0].text"),
    ],
)
def test_nul_in_a_string_is_refused_with_400(
    client: TestClient, where: str, expression: str
) -> None:
    body = medication_request(id="nul-1")
    if where == "identifier":
        body["identifier"][0]["value"] = "ORD\u00001"
    else:
        body["note"] = [{"text": "before\u0000after"}]
    r = client.put("/fhir/MedicationRequest/nul-1", json=body, headers=FHIR)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == [expression]
    assert client.get("/fhir/MedicationRequest/nul-1").status_code == 404


def test_a_batch_with_long_and_nul_entries_never_answers_500(client: TestClient) -> None:
    long_entry = medication_request(identifier=[{"system": "urn:long", "value": LONG}])
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": long_entry, "request": {"method": "POST", "url": "MedicationRequest"}},
            {
                "resource": medication_request(id="batch-2"),
                "request": {"method": "PUT", "url": "MedicationRequest/batch-2"},
            },
        ],
    }
    r = client.post("/fhir", json=batch, headers=FHIR)
    assert r.status_code == 200
    assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["201", "201"]

    batch["entry"][1]["resource"]["note"] = [{"text": "\u0000"}]
    refused = client.post("/fhir", json=batch, headers=FHIR)
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.note[0].text"]
