"""Two service processes on one database (PostgreSQL, and a SQLite file): concurrent
conditional creates and creates-by-PUT give no duplicate, no 5xx, and keep every
identifier row. Bounded: a few hundred requests on loopback. The processes trust the
Keycloak sandbox, and every request carries the EHR's real token (``staff``)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text

from harness.fhir_payloads import medication_request
from harness.postgres import postgres_server
from harness.service_process import replicas, service_process
from harness.staff_auth import StaffAuth, trusting_env
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.store.db import make_engine

FHIR = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
SYSTEM = "urn:ehr:orders"
IDENTIFIERS = 10
PER_IDENTIFIER = 20
CONCURRENCY = 40


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["postgresql", "sqlite"])
def two_replicas(
    request: pytest.FixtureRequest, tmp_path: Path, keycloak: KeycloakSandbox
) -> Iterator[tuple[str, list[str]]]:
    """(database URL, base URLs of two service processes on it), on a fresh schema."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    else:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    with replicas(url, tmp_path, count=2, extra_env=trusting_env(keycloak)) as urls:
        yield url, urls


async def _send_all(
    requests: list[tuple[str, str, bytes, dict[str, str]]], auth: StaffAuth
) -> list[tuple[int, str]]:
    """Send every (method, url, body, headers) with CONCURRENCY in flight; (status, body)."""
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=60, limits=limits, auth=auth) as client:

        async def one(
            method: str, url: str, body: bytes, headers: dict[str, str]
        ) -> tuple[int, str]:
            async with gate:
                r = await client.request(method, url, content=body, headers=headers)
                return r.status_code, r.text

        return await asyncio.gather(*(one(*req) for req in requests))


def _identifier_counts(database_url: str) -> tuple[Counter[str], int, int]:
    """(orders per identifier value, identifier rows, orders) as stored."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        owners = conn.execute(
            text("SELECT value, count(DISTINCT order_id) FROM order_identifiers GROUP BY value")
        ).all()
        rows = conn.execute(text("SELECT count(*) FROM order_identifiers")).scalar_one()
        orders = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
    engine.dispose()
    return Counter({value: n for value, n in owners}), rows, orders


def test_concurrent_conditional_creates_make_one_order_each(
    two_replicas: tuple[str, list[str]], staff: StaffAuth
) -> None:
    database_url, urls = two_replicas
    bodies = {f"CC-{n}": medication_request() for n in range(IDENTIFIERS)}
    for value, body in bodies.items():
        body["identifier"] = [
            {"system": SYSTEM, "value": value},
            {"system": "urn:ehr:placer", "value": f"{value}-placer"},
        ]
    replica = itertools.cycle(urls)
    requests = [
        (
            "POST",
            f"{next(replica)}/fhir/MedicationRequest",
            orjson.dumps(body),
            {**FHIR, "If-None-Exist": f"identifier={SYSTEM}|{value}"},
        )
        for _ in range(PER_IDENTIFIER)
        for value, body in bodies.items()
    ]
    answers = asyncio.run(_send_all(requests, staff))

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 201}, [a for a in answers if a[0] not in (200, 201)][:3]
    assert statuses[201] == IDENTIFIERS
    assert statuses[200] == IDENTIFIERS * (PER_IDENTIFIER - 1)
    owners, rows, orders = _identifier_counts(database_url)
    assert orders == IDENTIFIERS
    assert owners == Counter({v: 1 for value in bodies for v in (value, f"{value}-placer")})
    assert rows == 2 * IDENTIFIERS  # every identifier of every order kept


def test_concurrent_puts_of_one_version_create_once(
    two_replicas: tuple[str, list[str]], staff: StaffAuth
) -> None:
    database_url, urls = two_replicas
    ids = [f"put-race-{n}" for n in range(IDENTIFIERS)]
    bodies = {}
    for order_id in ids:
        body = medication_request(id=order_id, meta={"versionId": "3"})
        body["identifier"] = [{"system": SYSTEM, "value": f"{order_id}-shared"}]
        bodies[order_id] = orjson.dumps(body)
    replica = itertools.cycle(urls)
    requests = [
        ("PUT", f"{next(replica)}/fhir/MedicationRequest/{order_id}", bodies[order_id], FHIR)
        for _ in range(PER_IDENTIFIER)
        for order_id in ids
    ]
    answers = asyncio.run(_send_all(requests, staff))

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 201}, [a for a in answers if a[0] not in (200, 201)][:3]
    assert statuses[201] == IDENTIFIERS
    owners, rows, orders = _identifier_counts(database_url)
    assert orders == IDENTIFIERS
    assert rows == IDENTIFIERS
    assert set(owners.values()) == {1}


def test_concurrent_conditional_creates_on_patient_and_status_make_one_order(
    two_replicas: tuple[str, list[str]], staff: StaffAuth
) -> None:
    """A condition naming no identifier (#13's search parameters): each creates one order."""
    database_url, urls = two_replicas
    patients = [f"Patient/cond-{n}" for n in range(IDENTIFIERS)]
    replica = itertools.cycle(urls)
    requests = [
        (
            "POST",
            f"{next(replica)}/fhir/MedicationRequest",
            orjson.dumps(medication_request(subject={"reference": patient})),
            {**FHIR, "If-None-Exist": f"patient={patient}&status=active"},
        )
        for _ in range(PER_IDENTIFIER // 2)
        for patient in patients
    ]
    answers = asyncio.run(_send_all(requests, staff))

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 201}, [a for a in answers if a[0] not in (200, 201)][:3]
    assert statuses[201] == IDENTIFIERS
    _, _, orders = _identifier_counts(database_url)
    assert orders == IDENTIFIERS


def test_concurrent_if_match_updates_make_one_version_each(
    two_replicas: tuple[str, list[str]], staff: StaffAuth
) -> None:
    """#13's If-Match under concurrency: one update per version wins, the others get 412;
    every version is kept in order_versions, none twice, no 5xx."""
    database_url, urls = two_replicas
    order_id = "if-match-race"
    body = medication_request(id=order_id)
    with httpx.Client(timeout=60, auth=staff) as client:
        r = client.put(f"{urls[0]}/fhir/MedicationRequest/{order_id}", json=body, headers=FHIR)
        assert r.status_code == 201, r.text
    replica = itertools.cycle(urls)
    requests = []
    for n in range(PER_IDENTIFIER):
        changed = {**body, "note": [{"text": f"change {n}"}]}
        requests.append(
            (
                "PUT",
                f"{next(replica)}/fhir/MedicationRequest/{order_id}",
                orjson.dumps(changed),
                {**FHIR, "If-Match": 'W/"1"'},
            )
        )
    answers = asyncio.run(_send_all(requests, staff))

    statuses = Counter(status for status, _ in answers)
    assert statuses == Counter({200: 1, 412: PER_IDENTIFIER - 1}), statuses
    engine = make_engine(database_url)
    with engine.connect() as conn:
        versions = (
            conn.execute(
                text("SELECT version_id FROM order_versions WHERE order_id = :id ORDER BY 1"),
                {"id": order_id},
            )
            .scalars()
            .all()
        )
        current = conn.execute(
            text("SELECT version_id FROM orders WHERE id = :id"), {"id": order_id}
        ).scalar_one()
    engine.dispose()
    assert versions == [1, 2]
    assert current == 2


def test_orders_sharing_an_identifier_keep_their_rows_and_a_condition_sees_both(
    two_replicas: tuple[str, list[str]], staff: StaffAuth
) -> None:
    database_url, urls = two_replicas
    shared = [{"system": SYSTEM, "value": "SHARED-1"}]
    for n, url in enumerate(urls):
        r = httpx.put(
            f"{url}/fhir/MedicationRequest/shared-{n}",
            content=orjson.dumps(medication_request(id=f"shared-{n}", identifier=shared)),
            headers=FHIR,
            auth=staff,
        )
        assert r.status_code == 201
    owners, rows, _ = _identifier_counts(database_url)
    assert owners["SHARED-1"] == 2
    assert rows == 2
    r = httpx.post(
        f"{urls[0]}/fhir/MedicationRequest",
        content=orjson.dumps(medication_request(identifier=shared)),
        headers={**FHIR, "If-None-Exist": f"identifier={SYSTEM}|SHARED-1"},
        auth=staff,
    )
    assert r.status_code == 412


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_serve_with_two_workers_on_postgres(
    pg_url: str, tmp_path: Path, keycloak: KeycloakSandbox, staff: StaffAuth
) -> None:
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    with service_process(
        pg_url, tmp_path / "workers.log", args=["--workers", "2"], extra_env=trusting_env(keycloak)
    ) as (url, pid):
        spawned = [
            c for c in _children(pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
        ]
        assert len(spawned) == 2  # uvicorn's two worker processes
        body = orjson.dumps(
            medication_request(identifier=[{"system": SYSTEM, "value": "WORKERS-1"}])
        )
        condition = {**FHIR, "If-None-Exist": f"identifier={SYSTEM}|WORKERS-1"}
        answers = asyncio.run(
            _send_all([("POST", f"{url}/fhir/MedicationRequest", body, condition)] * 40, staff)
        )
    assert sorted(Counter(s for s, _ in answers).items()) == [(200, 39), (201, 1)]
