"""Sign-in, scopes and roles on every route, and one audit record per guarded request —
in-process, with tokens from a local issuer (the same table runs against Keycloak in
``tests/integration/test_access_live.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import respx
from fastapi.testclient import TestClient
from sqlalchemy import text
from structlog.testing import capture_logs

from harness.identity import ISSUER_FOR_TESTS, LocalIssuer, signed_in_app
from harness.route_table import PUBLIC, Arranged, Case, arrange, cases, served_routes
from services.infusion_bridge.settings import Settings
from tests.conftest import FAKE_EHR

USER_SCOPES = (
    "user/MedicationRequest.rs user/MedicationAdministration.rs user/Observation.rs "
    "user/Encounter.rs user/AdverseEvent.rs user/Procedure.rs user/AuditEvent.rs "
    "user/Session.rs user/Session.cu"
)
IDENTITIES: dict[str, dict[str, Any]] = {
    "ehr": {"roles": (), "scope": "system/MedicationRequest.cud system/MedicationRequest.rs"},
    "nurse": {"roles": ("nurse",), "scope": USER_SCOPES},
    "clinician": {"roles": ("clinician",), "scope": USER_SCOPES},
    "admin": {"roles": ("admin",), "scope": USER_SCOPES},
    "security-officer": {"roles": ("security-officer",), "scope": USER_SCOPES},
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_as(who: str, **extra: Any) -> str:
    return ISSUER_FOR_TESTS.token(name=who, client_id=f"{who}-app", **IDENTITIES[who], **extra)


class As:
    """A client that speaks as one identity."""

    def __init__(self, client: TestClient, who: str) -> None:
        self.client, self.headers = client, bearer(token_as(who))

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kwargs)


NOT_FOUND = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "not-found"}],
}
EMPTY = {"resourceType": "Bundle", "type": "searchset", "total": 0}


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    """The app in-process; the EHR answers the history pull (nothing known about anyone)."""
    with respx.mock(base_url=FAKE_EHR, assert_all_called=False) as ehr:
        ehr.get("/MedicationAdministration").respond(200, json=EMPTY)
        ehr.get("/Observation").respond(200, json=EMPTY)
        ehr.get(path__regex=r"/Patient/[^/]+$").respond(404, json=NOT_FOUND)
        ehr.route().pass_through()  # anything else goes out (and fails) as before
        with TestClient(signed_in_app(settings)) as c:
            yield c


@pytest.fixture
def arranged(app_client: TestClient) -> Arranged:
    return arrange(lambda who: As(app_client, who))


def audit_rows(client: TestClient) -> list[dict[str, Any]]:
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_events ORDER BY id")).mappings()
        return [dict(r) for r in rows]


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "expired": lambda: token_as("clinician", expires_in=-120),
    "wrong audience": lambda: token_as("clinician", audience="someone-else"),
    "wrong issuer": lambda: token_as("clinician", issuer="http://elsewhere.test/realms/x"),
    "bad signature": lambda: LocalIssuer(kid="test-key").token(name="forger"),
    "not a JWT": lambda: "not-a-token",
}


def test_every_guarded_route_is_in_the_table(app_client: TestClient, arranged: Arranged) -> None:
    table = {(c.method, c.route) for c in cases(arranged)}
    served = set(served_routes(app_client.app))  # type: ignore[arg-type]
    unguarded = served - table - PUBLIC - {("POST", "/fhir/")}
    assert not unguarded, f"routes missing from the access table: {sorted(unguarded)}"
    assert not table - served, f"table rows for routes that do not exist: {table - served}"


def _docs() -> set[tuple[str, str]]:
    return {
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
    } | {("POST", "/fhir/")}


def test_route_table_access_and_audit(app_client: TestClient, arranged: Arranged) -> None:
    for case in cases(arranged):
        _check(app_client, case)


PAGES = ("/ui/", "/docs", "/openapi.json")
"""Pages a browser opens: without sign-in they send it to sign in (303) instead of 401."""


def _check(client: TestClient, case: Case) -> None:
    kwargs: dict[str, Any] = {"json": case.json} if case.json is not None else {}
    kwargs["follow_redirects"] = False
    refused = (303,) if case.route.startswith(PAGES) else (401,)
    attempts: list[tuple[str, dict[str, str], tuple[int, ...], str]] = [
        ("no token", {}, refused, "4"),
        *[(name, bearer(make()), refused, "4") for name, make in BAD_TOKENS.items()],
        (f"as {case.allowed}", bearer(token_as(case.allowed)), case.ok, "0"),
    ]
    if case.denied is not None:  # a route any signed-in caller may use has no denied one
        attempts.insert(-1, (f"as {case.denied}", bearer(token_as(case.denied)), (403,), "4"))
    for label, auth, expected, outcome in attempts:
        before = len(audit_rows(client))
        r = client.request(case.method, case.url, headers={**case.headers, **auth}, **kwargs)
        where = f"{case.method} {case.url} {label}"
        assert r.status_code in expected, f"{where}: {r.status_code} {r.text[:300]}"
        if r.status_code == 401:
            assert r.headers["www-authenticate"].startswith("Bearer"), where
        if r.status_code == 303:
            assert r.headers["location"].startswith("/ui/login?next="), where
        if r.status_code in (401, 403) and not case.route.startswith(PAGES):
            assert r.json()["resourceType"] == "OperationOutcome", where
        rows = audit_rows(client)[before:]
        assert len(rows) == 1, f"{where}: {len(rows)} audit records"
        assert rows[0]["outcome"] == (outcome if r.status_code < 400 else "4"), where
        assert rows[0]["route"] == case.route, where


def test_a_patient_token_sees_only_its_patient(app_client: TestClient, arranged: Arranged) -> None:
    token = ISSUER_FOR_TESTS.token(
        roles=("clinician",), scope="launch/patient patient/*.rs", patient="route-table"
    )
    me = bearer(token)
    mine = app_client.get("/sessions", headers=me).json()
    assert mine["total"] >= 1
    assert {s["patient"] for s in mine["items"]} == {"Patient/route-table"}
    assert app_client.get("/sessions?patient=route-table-other", headers=me).json()["total"] == 0
    assert app_client.get(f"/sessions/{arranged.other_session_id}", headers=me).status_code == 404
    assert app_client.get(f"/orders/{arranged.other_order_id}", headers=me).status_code == 404
    fhir_read = app_client.get(f"/fhir/MedicationRequest/{arranged.other_order_id}", headers=me)
    assert fhir_read.status_code == 404
    other = f"/fhir/MedicationRequest/{arranged.other_order_id}"
    assert app_client.get(f"{other}/_history/1", headers=me).status_code == 404
    assert app_client.get(f"{other}/_history", headers=me).status_code == 404
    mine_history = f"/fhir/MedicationRequest/{arranged.order_id}/_history"
    assert app_client.get(mine_history, headers=me).json()["total"] >= 1
    searched = app_client.get("/fhir/MedicationRequest", headers=me).json()
    assert searched["total"] >= 1
    assert {e["resource"]["subject"]["reference"] for e in searched["entry"]} == {
        "Patient/route-table"
    }
    by_other = f"/fhir/MedicationRequest?patient=route-table-other&_id={arranged.other_order_id}"
    assert app_client.get(by_other, headers=me).json()["total"] == 0
    posted = app_client.post(
        "/fhir/MedicationRequest/_search",
        content=f"_id={arranged.other_order_id}".encode(),
        headers={**me, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 200
    assert posted.json()["total"] == 0
    assert app_client.get("/patients/route-table-other/infusions", headers=me).status_code == 404
    pull = app_client.post("/patients/route-table-other/ehr-history", headers=me)
    assert pull.status_code == 404
    assert app_client.post("/patients/route-table/ehr-history", headers=me).status_code == 200
    orders = app_client.get("/orders", headers=me).json()
    assert {o["patient"] for o in orders["items"]} == {"Patient/route-table"}
    obs = app_client.get("/fhir/Observation?patient=route-table-other", headers=me).json()
    assert obs["total"] == 0
    # and it cannot write, even as a clinician with a role
    assert (
        app_client.post("/sessions", json={"order_id": arranged.order_id}, headers=me).status_code
        == 403
    )


def test_audit_records_cannot_be_changed_or_removed(
    app_client: TestClient, arranged: Arranged
) -> None:
    assert audit_rows(app_client)
    engine = app_client.app.state.runtime.engine  # type: ignore[attr-defined]
    for statement in ("UPDATE audit_events SET outcome = '0'", "DELETE FROM audit_events"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    paths = app_client.app.openapi()["paths"]  # type: ignore[attr-defined]
    assert set(paths["/fhir/AuditEvent"]) == {"get"}, "no way to change the audit trail"


def test_audit_events_as_fhir(app_client: TestClient, arranged: Arranged) -> None:
    officer = bearer(token_as("security-officer"))
    page = app_client.get("/fhir/AuditEvent?patient=route-table&_count=5", headers=officer).json()
    assert page["resourceType"] == "Bundle"
    assert page["total"] >= 5
    event = page["entry"][0]["resource"]
    assert event["resourceType"] == "AuditEvent"
    assert {"reference": "Patient/route-table"} in [e.get("what") for e in event["entity"]]
    by_agent = app_client.get("/fhir/AuditEvent?agent=nurse", headers=officer).json()
    assert by_agent["total"] >= 1
    assert all(e["resource"]["agent"][0]["who"]["display"] == "nurse" for e in by_agent["entry"])
    refused = app_client.get("/fhir/AuditEvent?_id=1", headers=officer)
    assert refused.status_code == 400


def test_bodies_must_be_json(app_client: TestClient) -> None:
    r = app_client.post(
        "/fhir/MedicationRequest",
        content=b"resourceType=MedicationRequest",
        headers={"Content-Type": "text/plain", **bearer(token_as("ehr"))},
    )
    assert r.status_code == 415
    assert r.json()["issue"][0]["code"] == "not-supported"
    form = app_client.post(
        "/sessions",
        content=b"order_id=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    # a form body only where FHIR search takes one (POST [type]/_search)
    form_as_ehr = {"Content-Type": "application/x-www-form-urlencoded", **bearer(token_as("ehr"))}
    for path in ("/fhir/MedicationRequest", "/fhir", "/fhir/MedicationRequest/x/_search"):
        form_fhir = app_client.post(
            path, content=b"resourceType=MedicationRequest", headers=form_as_ehr
        )
        assert form_fhir.status_code == 415, path


def test_smart_configuration_is_public_and_names_the_scopes(app_client: TestClient) -> None:
    doc = app_client.get("/.well-known/smart-configuration").json()
    assert doc["token_endpoint"].endswith("/protocol/openid-connect/token")
    assert "system/MedicationRequest.cu" in doc["scopes_supported"]
    assert "user/Session.rs" in doc["scopes_supported"]
    assert "S256" in doc["code_challenge_methods_supported"]


def test_switching_sign_in_off_is_refused_off_loopback(settings: Settings) -> None:
    settings.auth_disabled = True
    settings.host = "0.0.0.0"  # noqa: S104
    with pytest.raises(RuntimeError, match="loopback only"):
        signed_in_app(settings)


def test_a_bundle_delete_names_its_order_in_the_audit_record(
    app_client: TestClient, arranged: Arranged
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "DELETE", "url": "MedicationRequest/rt-del-0"}}],
    }
    r = app_client.post(
        "/fhir",
        json=bundle,
        headers={"Content-Type": "application/fhir+json", **bearer(token_as("ehr"))},
    )
    assert r.json()["entry"][0]["response"]["status"].startswith("204")
    record = audit_rows(app_client)[-1]
    assert record["patient"] == "Patient/route-table"
    assert "rt-del-0" in str(record["entities"])


def test_switching_sign_in_off_warns_and_lets_every_request_in(settings: Settings) -> None:
    settings.auth_disabled = True
    with capture_logs() as logs, TestClient(signed_in_app(settings)) as c:
        assert c.get("/sessions").status_code == 200  # no token at all
    warnings = [e for e in logs if e["event"] == "auth_disabled"]
    assert warnings
    assert warnings[0]["log_level"] == "warning"


@pytest.mark.parametrize(
    ("asked", "sent_to"),
    [
        ("/ui/sessions/abc?x=1", "/ui/sessions/abc?x=1"),
        ("//evil.example/x", "/ui/sessions"),
        ("/\\evil.example/x", "/ui/sessions"),
        ("https://evil.example/", "/ui/sessions"),
        (None, "/ui/sessions"),
    ],
)
def test_sign_in_returns_only_to_this_service(asked: str | None, sent_to: str) -> None:
    from services.infusion_bridge.usecases.web_sign_in import _safe_next

    assert _safe_next(asked) == sent_to
