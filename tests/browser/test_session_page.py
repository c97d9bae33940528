"""End to end in a real browser: the session page draws the vitals chart and event markers.

Starts the real service (uvicorn on a free port), drives an order and a completed session
through the API over HTTP, opens ``/ui/sessions/{id}`` in headless Debian Chromium (driven
by the ``playwright`` package, which only talks to the browser we point it at: nothing is
downloaded), and checks what the page's script drew against the session's data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.fhir_payloads import medication_request
from harness.live_service import running_service
from harness.staff_auth import StaffAuth, trusting
from harness.timelines import completed_timeline, run_session, start_of_yesterday, ts
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.settings import Settings

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FHIR = {"Content-Type": "application/fhir+json"}
MARKER_TYPES = {
    "infusion-start",
    "rate-change",
    "pause",
    "resume",
    "reaction",
    "infusion-end",
    "stop",
    "discharge",
}
VITALS = 12


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is needed at {CHROMIUM} for the browser tests: "
            "run `apt-get install chromium` (Debian package), or set CHROMIUM to its path",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - dev extra not installed
        pytest.fail("the playwright package is needed: pip install -e '.[dev]'", pytrace=False)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def live(settings: Settings, keycloak: KeycloakSandbox) -> Iterator[str]:
    for name, value in trusting(keycloak).items():
        setattr(settings, name, value)
    with running_service(settings) as url:
        yield url


def sign_in(page: Any, url: str, keycloak: KeycloakSandbox, user: str = "clinician") -> None:
    """Open ``url``: the service sends the browser to the provider's real login page; sign in
    there as a demo user and come back to ``url``."""
    page.goto(url, wait_until="load")
    assert page.url.startswith(keycloak.issuer), f"not sent to sign in: {page.url}"
    page.fill("#username", user)
    page.fill("#password", user)
    page.click("#kc-login")
    page.wait_for_url(url, timeout=20_000)


def _timeline_with_reaction() -> list[dict[str, Any]]:
    """The shared completed session, plus a mild reaction while infusing."""
    events = completed_timeline(start_of_yesterday(), vitals=VITALS)
    start = start_of_yesterday()
    reaction = {
        "type": "reaction",
        "at": ts(start, 100),
        "by": "RN Test",
        "symptoms": ["flushing", "itching"],
        "severity": "mild",
        "action": "slowed",
        "rate_ml_per_h": 60,
        "treatment": "cetirizine 10 mg PO",
    }
    at = next(i for i, e in enumerate(events) if e["at"] > reaction["at"])
    events.insert(at, reaction)
    return events


def _session(url: str, staff: StaffAuth) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=10, auth=staff) as http:
        r = http.put(
            "/fhir/MedicationRequest/ocr-live", json=medication_request(id="ocr-live"), headers=FHIR
        )
        assert r.status_code in (200, 201), r.text
        view = run_session(http, "ocr-live", _timeline_with_reaction())
        return http.get(f"/sessions/{view['id']}").json()


def _canvas_ink(page: Any, canvas_id: str) -> int:
    """How many pixels of the canvas are painted (not transparent)."""
    count: int = page.evaluate(
        """(id) => {
            const c = document.getElementById(id);
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < px.length; i += 4) { if (px[i] > 0) n++; }
            return n;
        }""",
        canvas_id,
    )
    return count


def test_session_page_draws_vitals_and_markers(
    live: str, browser: Any, keycloak: KeycloakSandbox, staff: StaffAuth
) -> None:
    view = _session(live, staff)
    assert view["state"] == "discharged"
    events = [item["event"] for item in view["timeline"]]
    vitals = [e for e in events if e["type"] == "vitals"]
    expected_markers = [e["type"] for e in events if e["type"] in MARKER_TYPES]
    assert len(vitals) == VITALS
    assert expected_markers == [
        "infusion-start",
        "rate-change",
        "reaction",
        "infusion-end",
        "discharge",
    ]

    page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    problems: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, f"{live}/ui/sessions/{view['id']}", keycloak)
    page.on(
        "request",
        lambda r: None if r.url.startswith((live, "data:")) else outside.append(r.url),
    )
    response = page.reload(wait_until="load")
    assert response is not None
    assert response.status == 200
    page.wait_for_selector("#vitals-chart.is-drawn", timeout=10_000)
    assert page.locator(".signed-in").get_attribute("data-user") == "clinician"

    figure = page.locator("#vitals-chart")
    assert figure.get_attribute("data-points") == str(VITALS)
    assert figure.get_attribute("data-markers") == str(len(expected_markers))

    drawn = page.evaluate("window.__chart")
    assert drawn["sessionId"] == view["id"]
    assert drawn["points"] == VITALS
    series = drawn["series"]
    assert series["systolic"] == [v["systolic_mmhg"] for v in vitals]
    assert series["diastolic"] == [v["diastolic_mmhg"] for v in vitals]
    assert series["heart_rate"] == [v["heart_rate_per_min"] for v in vitals]
    assert series["spo2"] == [v["spo2_percent"] for v in vitals]
    assert series["temperature"] == [v["temperature_c"] for v in vitals]
    assert [m["type"] for m in drawn["markers"]] == expected_markers
    xs = [m["x"] for m in drawn["markers"]]
    assert xs == sorted(xs), "markers are placed in time order along the axis"
    assert len(set(xs)) == len(xs)
    assert any("Reaction (mild)" in m["label"] for m in drawn["markers"])

    for canvas in drawn["canvases"]:
        assert canvas["width"] > 600, canvas
        assert canvas["height"] > 150, canvas
        assert _canvas_ink(page, canvas["id"]) > 5_000, f"{canvas['id']} looks empty"

    # the tables beside the chart come from the same session
    assert page.locator("table.events-table tbody tr").count() == len(events)
    assert page.locator("table.vitals-table tbody tr").count() == VITALS
    assert "Written back" in page.locator("#delivery").inner_text() or "Queued" in (
        page.locator("#delivery").inner_text()
    )

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "session-page.png"), full_page=True)
    page.emulate_media(media="print")
    page.screenshot(path=str(ARTIFACTS / "session-page-print.png"), full_page=True)
    assert page.locator(".topbar").is_hidden()

    assert problems == [], problems
    assert outside == [], f"the page asked for something outside the service: {outside}"
    page.close()


def test_session_list_links_to_the_page(
    live: str, browser: Any, keycloak: KeycloakSandbox, staff: StaffAuth
) -> None:
    view = _session(live, staff)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, f"{live}/ui/sessions", keycloak)
    row = page.locator(f"tr[data-session-id='{view['id']}']")
    assert row.count() == 1
    assert "Discharged" in row.inner_text()
    row.locator("a").first.click()
    page.wait_for_selector("#vitals-chart.is-drawn", timeout=10_000)
    assert page.url.endswith(f"/ui/sessions/{view['id']}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{live}/ui/sessions", wait_until="load")
    page.screenshot(path=str(ARTIFACTS / "session-list.png"), full_page=True)
    page.close()


def test_signed_out_the_pages_send_you_to_sign_in(
    live: str, browser: Any, keycloak: KeycloakSandbox
) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, f"{live}/ui/sessions", keycloak, user="nurse")
    assert page.locator(".signed-in").get_attribute("data-user") == "nurse"
    page.click("form.signout button")
    page.wait_for_url(f"{live}/ui/signed-out")
    page.goto(f"{live}/ui/sessions", wait_until="load")
    assert page.url.startswith(keycloak.issuer), "signed out, the list is not shown"
    cookies = {c["name"]: c for c in context.cookies(live)}
    assert "ib_session" in cookies
    assert cookies["ib_session"]["httpOnly"] is True
    assert cookies["ib_session"]["sameSite"] == "Lax"
    context.close()


def test_a_role_without_access_gets_a_refusal_page(
    live: str, browser: Any, keycloak: KeycloakSandbox
) -> None:
    page = browser.new_page()
    page.goto(f"{live}/ui/sessions", wait_until="load")
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("#kc-login")
    page.wait_for_load_state("load")
    assert "Not allowed" in page.locator("h1").inner_text()
    page.close()
