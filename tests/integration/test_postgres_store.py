"""The store on a real PostgreSQL (the docker-compose setup): migrations and the main flows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import SQLModel

from harness.fhir_payloads import medication_request
from harness.postgres import postgres_server
from harness.staff_auth import StaffAuth, trusting
from harness.timelines import completed_timeline, run_session
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.app import create_app
from services.infusion_bridge.settings import Settings
from services.infusion_bridge.store import outbox
from services.infusion_bridge.store.db import make_engine, migrate, transaction

FHIR = {"Content-Type": "application/fhir+json"}
DAY = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_client(pg_url: str, keycloak: KeycloakSandbox, staff: StaffAuth) -> Iterator[TestClient]:
    engine = make_engine(pg_url)
    with engine.begin() as conn:  # a clean schema per test
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    settings = Settings(
        database_url=pg_url,
        ehr_base_url="http://ehr.test/fhir",
        sync_interval_seconds=0,
        delivery_enabled=False,
        log_format="console",
        **trusting(keycloak),
    )
    with TestClient(create_app(settings)) as client:
        client.auth = staff
        yield client


def test_migrations_match_the_models_on_postgres(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []


def test_orders_sessions_and_fhir_reads_on_postgres(pg_client: TestClient, pg_url: str) -> None:
    c = pg_client
    assert (
        c.put(
            "/fhir/MedicationRequest/pg-1", json=medication_request(id="pg-1"), headers=FHIR
        ).status_code
        == 201
    )
    assert c.get("/orders", params={"drug": "ocrelizumab", "patient": "pat-1"}).json()["total"] == 1
    bad = medication_request()
    bad["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = -1
    assert (
        c.post(
            "/fhir",
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": medication_request(),
                        "request": {"method": "POST", "url": "MedicationRequest"},
                    },
                    {"resource": bad, "request": {"method": "POST", "url": "MedicationRequest"}},
                ],
            },
            headers=FHIR,
        ).status_code
        == 422
    )
    assert c.get("/orders").json()["total"] == 1

    done = run_session(c, "pg-1", completed_timeline(DAY, vitals=2))
    assert done["state"] == "discharged"
    run_session(c, "pg-1", [{"type": "check-in", "at": (DAY + timedelta(days=3)).isoformat()}])
    listed = c.get("/sessions", params={"patient": "pat-1", "since": "2026-08-01T00:00:00Z"}).json()
    assert [s["id"] for s in listed["items"]][1] == done["id"]
    vitals = c.get("/fhir/Observation", params={"patient": "pat-1", "date": "2026-09-01"}).json()
    assert vitals["total"] == 10
    history = c.get("/patients/pat-1/infusions").json()
    assert history["drugs"][0]["total_dose"] == [{"value": 600.0, "unit": "mg"}]

    engine = make_engine(pg_url)
    now = datetime.now(UTC)
    with transaction(engine) as db:
        (due,) = outbox.due_ids(db, now=now, limit=10)
        assert outbox.claim(db, due, now=now, lease=timedelta(seconds=30)) is not None
    with transaction(engine) as db:
        assert outbox.claim(db, due, now=now, lease=timedelta(seconds=30)) is None


def test_the_audit_trail_is_append_only_in_postgres(pg_client: TestClient, pg_url: str) -> None:
    assert pg_client.get("/sessions").status_code == 200  # leaves an audit record
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() >= 1
        for statement in (
            "UPDATE audit_events SET outcome = '0'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() >= 1
    finally:
        engine.dispose()
