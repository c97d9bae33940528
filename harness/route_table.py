"""Every guarded route of the service, with a request that exercises it, who may make it
(a demo identity: ``ehr``, ``nurse``, ``clinician``, ``admin``, ``security-officer``) and
who may not (lacks the scope or the role). Shared by the in-process test (local tokens) and
the integration test (real Keycloak tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import FastAPI

from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline, start_of_yesterday

FHIR = {"Content-Type": "application/fhir+json"}
PATIENT = "Patient/route-table"
OTHER_PATIENT = "Patient/route-table-other"
PUBLIC = {
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/fhir/metadata"),
    ("GET", "/.well-known/smart-configuration"),
    ("GET", "/fhir/.well-known/smart-configuration"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/"),
    ("GET", "/ui/login"),
    ("GET", "/ui/callback"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/signed-out"),
}
"""Routes anyone may call: probes, discovery, and the sign-in flow of the pages."""


class Client(Protocol):
    def request(self, method: str, url: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Case:
    method: str
    route: str
    url: str
    allowed: str
    denied: str | None
    ok: tuple[int, ...]
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Arranged:
    order_id: str
    session_id: str
    done_session_id: str
    observation_id: str
    administration_id: str
    delivery_id: int
    other_order_id: str
    other_session_id: str


def arrange(as_: Callable[[str], Client]) -> Arranged:
    """Orders for two patients, an open session and a finished one (with its FHIR record
    and its write-back), made by the identities allowed to make them."""
    ehr, nurse, admin = as_("ehr"), as_("nurse"), as_("admin")
    order_id = _push(ehr, "rt-order", PATIENT)
    other_order_id = _push(ehr, "rt-other", OTHER_PATIENT)
    for i in range(3):  # one each for the PUT, DELETE and hook cases
        _push(ehr, f"rt-del-{i}", PATIENT)
    session_id = _open(nurse, order_id)
    other_session_id = _open(nurse, other_order_id)
    done = _open(nurse, order_id)
    for event in completed_timeline(start_of_yesterday(), vitals=1):
        r = nurse.request("POST", f"/sessions/{done}/events", json=event)
        assert r.status_code == 201, r.text
    record = nurse.request("GET", f"/sessions/{done}/fhir").json()
    first = {e["resource"]["resourceType"]: e["resource"]["id"] for e in record["entry"]}
    deliveries = admin.request("GET", "/deliveries").json()
    return Arranged(
        order_id=order_id,
        session_id=session_id,
        done_session_id=done,
        observation_id=first["Observation"],
        administration_id=first["MedicationAdministration"],
        delivery_id=deliveries[0]["id"],
        other_order_id=other_order_id,
        other_session_id=other_session_id,
    )


def _push(ehr: Client, order_id: str, patient: str) -> str:
    body = medication_request(id=order_id, subject={"reference": patient})
    r = ehr.request("PUT", f"/fhir/MedicationRequest/{order_id}", json=body, headers=FHIR)
    assert r.status_code in (200, 201), r.text
    return order_id


def _open(nurse: Client, order_id: str) -> str:
    r = nurse.request("POST", "/sessions", json={"order_id": order_id})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def cases(a: Arranged) -> list[Case]:
    order = medication_request(id="rt-put", subject={"reference": PATIENT})
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"MedicationRequest/{a.order_id}"}}],
    }
    event = {"type": "check-in", "at": start_of_yesterday().isoformat(), "by": "RN"}
    s, done = a.session_id, a.done_session_id
    return [
        Case(
            "POST",
            "/fhir/MedicationRequest",
            "/fhir/MedicationRequest",
            "ehr",
            "nurse",
            (201,),
            json=medication_request(subject={"reference": PATIENT}),
            headers=FHIR,
        ),
        Case(
            "PUT",
            "/fhir/MedicationRequest/{order_id}",
            "/fhir/MedicationRequest/rt-put",
            "ehr",
            "clinician",
            (200, 201),
            json=order,
            headers=FHIR,
        ),
        Case(
            "GET",
            "/fhir/MedicationRequest/{order_id}",
            f"/fhir/MedicationRequest/{a.order_id}",
            "clinician",
            "admin",
            (200,),
        ),
        Case(
            "GET",
            "/fhir/MedicationRequest/{order_id}/_history/{version_id}",
            f"/fhir/MedicationRequest/{a.order_id}/_history/1",
            "nurse",
            "admin",
            (200,),
        ),
        Case(
            "GET",
            "/fhir/MedicationRequest/{order_id}/_history",
            f"/fhir/MedicationRequest/{a.order_id}/_history",
            "clinician",
            "security-officer",
            (200,),
        ),
        Case(
            "GET",
            "/fhir/MedicationRequest",
            f"/fhir/MedicationRequest?patient={PATIENT}",
            "clinician",
            "admin",
            (200,),
        ),
        Case(
            "POST",
            "/fhir/MedicationRequest/_search",
            f"/fhir/MedicationRequest/_search?patient={PATIENT}",
            "ehr",
            "security-officer",
            (200,),
        ),
        Case(
            "DELETE",
            "/fhir/MedicationRequest/{order_id}",
            "/fhir/MedicationRequest/rt-del-0",
            "ehr",
            "nurse",
            (204,),
        ),
        Case("POST", "/fhir", "/fhir", "ehr", "clinician", (200,), json=bundle, headers=FHIR),
        Case(
            "PUT",
            "/hooks/ehr/MedicationRequest/{order_id}",
            "/hooks/ehr/MedicationRequest/rt-del-1",
            "ehr",
            "nurse",
            (200, 201),
            json=medication_request(id="rt-del-1", subject={"reference": PATIENT}),
            headers=FHIR,
        ),
        Case(
            "DELETE",
            "/hooks/ehr/MedicationRequest/{order_id}",
            "/hooks/ehr/MedicationRequest/rt-del-2",
            "ehr",
            "clinician",
            (204,),
        ),
        Case("POST", "/hooks/ehr", "/hooks/ehr", "ehr", "admin", (200,)),
        Case("GET", "/orders", "/orders", "clinician", "admin", (200,)),
        Case(
            "GET",
            "/orders/{order_id}",
            f"/orders/{a.order_id}",
            "nurse",
            "security-officer",
            (200,),
        ),
        Case(
            "POST",
            "/sessions",
            "/sessions",
            "nurse",
            "clinician",
            (201,),
            json={"order_id": a.order_id},
        ),
        Case(
            "POST",
            "/sessions/{session_id}/events",
            f"/sessions/{s}/events",
            "nurse",
            "clinician",
            (201,),
            json=event,
        ),
        Case("GET", "/sessions/{session_id}", f"/sessions/{s}", "clinician", "admin", (200,)),
        Case("GET", "/sessions", "/sessions", "nurse", "ehr", (200,)),
        Case(
            "GET",
            "/sessions/{session_id}/fhir",
            f"/sessions/{done}/fhir",
            "clinician",
            "admin",
            (200,),
        ),
        Case(
            "GET",
            "/patients/{patient_id}/infusions",
            f"/patients/{PATIENT.split('/')[1]}/infusions",
            "clinician",
            "admin",
            (200,),
        ),
        Case(
            "POST",
            "/patients/{patient_id}/ehr-history",
            f"/patients/{PATIENT.split('/')[1]}/ehr-history",
            "clinician",
            "admin",
            (200, 503),  # 503 where no EHR answers (the live access test runs without one)
        ),
        Case("GET", "/deliveries", "/deliveries", "admin", "clinician", (200,)),
        Case(
            "POST",
            "/deliveries/{delivery_id}/retry",
            f"/deliveries/{a.delivery_id}/retry",
            "admin",
            "nurse",
            (202,),
        ),
        Case(
            "GET",
            "/fhir/MedicationAdministration",
            f"/fhir/MedicationAdministration?patient={PATIENT}",
            "clinician",
            "admin",
            (200,),
        ),
        Case(
            "GET",
            "/fhir/Observation",
            f"/fhir/Observation?patient={PATIENT}",
            "clinician",
            "ehr",
            (200,),
        ),
        Case(
            "POST",
            "/fhir/MedicationAdministration/_search",
            f"/fhir/MedicationAdministration/_search?patient={PATIENT}",
            "nurse",
            "admin",
            (200,),
        ),
        Case(
            "POST",
            "/fhir/Observation/_search",
            f"/fhir/Observation/_search?patient={PATIENT}",
            "clinician",
            "ehr",
            (200,),
        ),
        Case(
            "GET",
            "/fhir/MedicationAdministration/{resource_id}/_history/{version_id}",
            f"/fhir/MedicationAdministration/{a.administration_id}/_history/1",
            "clinician",
            "admin",
            (200,),
        ),
        Case(
            "GET",
            "/fhir/Observation/{resource_id}/_history/{version_id}",
            f"/fhir/Observation/{a.observation_id}/_history/1",
            "nurse",
            "ehr",
            (200,),
        ),
        *[
            Case(
                "GET",
                f"/fhir/{rtype}/{{resource_id}}/_history/{{version_id}}",
                f"/fhir/{rtype}/none/_history/1",
                "clinician",
                "admin",
                (404,),
            )
            for rtype in ("Encounter", "AdverseEvent", "Procedure")
        ],
        Case(
            "GET",
            "/fhir/MedicationAdministration/{resource_id}",
            f"/fhir/MedicationAdministration/{a.administration_id}",
            "clinician",
            "admin",
            (200,),
        ),
        Case(
            "GET",
            "/fhir/Observation/{resource_id}",
            f"/fhir/Observation/{a.observation_id}",
            "nurse",
            "admin",
            (200,),
        ),
        Case(
            "GET",
            "/fhir/Encounter/{resource_id}",
            "/fhir/Encounter/none",
            "clinician",
            "admin",
            (404,),
        ),
        Case(
            "GET",
            "/fhir/AdverseEvent/{resource_id}",
            "/fhir/AdverseEvent/none",
            "clinician",
            "admin",
            (404,),
        ),
        Case(
            "GET",
            "/fhir/Procedure/{resource_id}",
            "/fhir/Procedure/none",
            "clinician",
            "admin",
            (404,),
        ),
        Case(
            "GET",
            "/fhir/AuditEvent",
            f"/fhir/AuditEvent?patient={PATIENT}",
            "security-officer",
            "clinician",
            (200,),
        ),
        Case("GET", "/ui/sessions", "/ui/sessions", "clinician", "admin", (200,)),
        Case("GET", "/openapi.json", "/openapi.json", "admin", None, (200,)),
        Case("GET", "/docs", "/docs", "ehr", None, (200,)),
        Case(
            "GET", "/ui/sessions/{session_id}", f"/ui/sessions/{done}", "clinician", "admin", (200,)
        ),
    ]


def served_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD aside), static files excluded."""
    for route in app.routes:
        inner = getattr(route, "original_router", None)
        routes = inner.routes if inner is not None else [route]
        for r in routes:
            path = getattr(r, "path", None)
            for method in sorted(getattr(r, "methods", None) or ()):
                if path is not None and method != "HEAD":
                    yield method, path
