"""The clinician pages (``/ui``): HTML from the TestClient, no browser.

The session list with its filters and empty/error states, the session page with the chart
data embedded as JSON, the 404 page, the static files, and the offline rule: nothing we serve
points the browser at another host.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline, run_session, start_of_yesterday, ts
from services.infusion_bridge.clock import utcnow
from services.infusion_bridge.store.db import transaction
from services.infusion_bridge.store.outbox import mark_dead

FHIR = {"Content-Type": "application/fhir+json"}
MARKERS = ["infusion-start", "rate-change", "infusion-end", "discharge"]


def _order(client: TestClient, order_id: str, patient: str = "pat-1") -> str:
    body = medication_request(subject={"reference": f"Patient/{patient}"})
    r = client.put(
        f"/fhir/MedicationRequest/{order_id}", json=body | {"id": order_id}, headers=FHIR
    )
    assert r.status_code in (200, 201), r.text
    return order_id


def _checked_in(client: TestClient, order_id: str) -> dict[str, Any]:
    """A session with a check-in and nothing else (no vitals yet)."""
    start = start_of_yesterday() + timedelta(hours=2)
    return run_session(client, order_id, [{"type": "check-in", "at": ts(start, 0)}])


def _embedded(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="session-data">(.*?)</script>', html, re.S
    )
    assert match, "the page embeds the session data as JSON"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


@pytest.fixture
def done(client: TestClient) -> dict[str, Any]:
    """A completed session (12 vitals) for pat-1."""
    order = _order(client, "ocr-web")
    return run_session(client, order, completed_timeline(start_of_yesterday(), vitals=12))


# ---------------------------------------------------------------- the list


def test_home_redirects_to_the_session_list(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307)
    assert r.headers["location"] == "/ui/sessions"


def test_empty_list_says_there_are_no_sessions(client: TestClient) -> None:
    r = client.get("/ui/sessions")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert 'id="empty-state"' in r.text
    assert "No sessions yet" in r.text
    assert "<table" not in r.text


def test_list_shows_sessions_newest_first_with_links(
    client: TestClient, done: dict[str, Any]
) -> None:
    other = _checked_in(client, _order(client, "ocr-web-2", patient="pat-2"))
    r = client.get("/ui/sessions")
    assert r.status_code == 200
    ids = re.findall(r'<tr data-session-id="([^"]+)"', r.text)
    assert ids == [other["id"], done["id"]]  # the later start first
    assert f'href="/ui/sessions/{done["id"]}"' in r.text
    assert "Ocrelizumab (Ocrevus)" in r.text
    assert "Discharged" in r.text
    assert "Checked in" in r.text
    assert "pending" in r.text  # the completed session's write-back is queued
    assert "1\u20132 of 2 sessions" in r.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state": "discharged"}, ["done"]),
        ({"state": "checked-in"}, ["other"]),
        ({"patient": "pat-2"}, ["other"]),
        ({"patient": "Patient/pat-1"}, ["done"]),
        ({"drug": "ocrelizumab"}, ["other", "done"]),
        ({"since": "2000-01-01", "until": "2999-12-31"}, ["other", "done"]),
    ],
)
def test_list_filters(
    client: TestClient, done: dict[str, Any], query: dict[str, str], expected: list[str]
) -> None:
    other = _checked_in(client, _order(client, "ocr-web-2", patient="pat-2"))
    names = {done["id"]: "done", other["id"]: "other"}
    r = client.get("/ui/sessions", params=query)
    assert r.status_code == 200
    assert [names[i] for i in re.findall(r'<tr data-session-id="([^"]+)"', r.text)] == expected
    for value in query.values():  # the form shows the filters in force
        assert value in r.text


def test_filters_that_match_nothing_say_so(client: TestClient, done: dict[str, Any]) -> None:
    r = client.get("/ui/sessions", params={"patient": "nobody", "state": "stopped"})
    assert r.status_code == 200
    assert 'id="empty-state"' in r.text
    assert "No sessions match these filters" in r.text
    assert "<table" not in r.text
    today = start_of_yesterday() + timedelta(days=3)
    r = client.get("/ui/sessions", params={"since": today.date().isoformat()})
    assert "No sessions match these filters" in r.text


def test_bad_filters_are_explained_not_a_fhir_error(client: TestClient) -> None:
    r = client.get("/ui/sessions", params={"since": "yesterday", "state": "asleep", "limit": "0"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert 'id="filter-errors"' in r.text
    assert "&#39;yesterday&#39; is not a date" in r.text
    assert "Unknown state" in r.text
    assert "&#39;limit&#39; must be a whole number from 1 to 200" in r.text


def test_list_pages(client: TestClient, done: dict[str, Any]) -> None:
    _checked_in(client, _order(client, "ocr-web-2", patient="pat-2"))
    first = client.get("/ui/sessions", params={"limit": "1"})
    assert "1\u20131 of 2 sessions" in first.text
    assert 'rel="next" href="/ui/sessions?offset=1&amp;limit=1"' in first.text
    second = client.get("/ui/sessions", params={"limit": "1", "offset": "1"})
    assert re.findall(r'<tr data-session-id="([^"]+)"', second.text) == [done["id"]]
    assert 'rel="prev"' in second.text
    assert 'rel="next"' not in second.text


# ---------------------------------------------------------------- the session page


def test_session_page_embeds_vitals_and_markers(client: TestClient, done: dict[str, Any]) -> None:
    r = client.get(f"/ui/sessions/{done['id']}")
    assert r.status_code == 200
    html = r.text
    data = _embedded(html)
    vitals = [i["event"] for i in done["timeline"] if i["event"]["type"] == "vitals"]
    assert len(data["vitals"]) == len(vitals) == 12
    assert [v["systolic"] for v in data["vitals"]] == [v["systolic_mmhg"] for v in vitals]
    assert [v["diastolic"] for v in data["vitals"]] == [v["diastolic_mmhg"] for v in vitals]
    assert [v["heart_rate"] for v in data["vitals"]] == [v["heart_rate_per_min"] for v in vitals]
    assert [v["spo2"] for v in data["vitals"]] == [v["spo2_percent"] for v in vitals]
    assert [v["temperature"] for v in data["vitals"]] == [v["temperature_c"] for v in vitals]
    assert [m["type"] for m in data["markers"]] == MARKERS
    assert [m["label"] for m in data["markers"][:2]] == ["Start 40 mL/h", "Rate 80 mL/h"]
    # minutes since the first event (check-in): infusion start at +35, first vitals at +40
    assert data["markers"][0]["t"] == 35
    assert data["vitals"][0]["t"] == 40
    ts_ = [p["t"] for p in data["vitals"]]
    assert ts_ == sorted(ts_)
    assert data["session_id"] == done["id"]

    assert 'id="vitals-chart"' in html
    assert "/ui/static/vendor/chart.umd.min.js" in html
    assert "/ui/static/session-chart.js" in html
    # header, tables and delivery beside the chart
    assert "Ocrelizumab" in html
    assert "Patient/pat-1" in html
    assert "ocr-web" in html
    assert html.count('<tr class="ev ev-') == len(done["timeline"])
    assert "methylprednisolone" in html
    assert "No infusion reactions documented." in html
    assert "Queued: waiting to be written back to the EHR." in html
    assert "RN Test" in html
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


def test_session_without_vitals_says_so(client: TestClient) -> None:
    view = _checked_in(client, _order(client, "ocr-web-3"))
    r = client.get(f"/ui/sessions/{view['id']}")
    assert r.status_code == 200
    assert 'id="no-vitals"' in r.text
    assert "No vitals recorded yet" in r.text
    assert 'id="vitals-chart"' not in r.text
    assert "chart.umd.min.js" not in r.text  # nothing to draw: no chart script
    assert _embedded(r.text)["vitals"] == []
    assert "Not queued yet" in r.text


def test_reactions_and_free_text_are_escaped(client: TestClient) -> None:
    start = start_of_yesterday()
    events = completed_timeline(start, vitals=2)
    events.insert(
        5,
        {
            "type": "reaction",
            "at": ts(start, 40),
            "by": "<b>RN</b>",
            "symptoms": ["rash"],
            "severity": "moderate",
            "action": "none",
            "note": "</script><script>alert(1)</script>",
        },
    )
    view = run_session(client, _order(client, "ocr-web-4"), events)
    html = client.get(f"/ui/sessions/{view['id']}").text
    assert "<script>alert(1)" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html
    assert "&lt;b&gt;RN&lt;/b&gt;" in html
    assert "Reaction (moderate)" in [m["label"] for m in _embedded(html)["markers"]]
    assert 'class="badge sev sev-moderate"' in html


def test_dead_letter_is_highlighted(client: TestClient, done: dict[str, Any]) -> None:
    engine = client.app.state.runtime.engine
    with transaction(engine) as s:
        mark_dead(
            s,
            done["deliveries"][0]["id"],
            error="HTTP 422 from the EHR",
            outcome=None,
            now=utcnow(),
        )
    html = client.get(f"/ui/sessions/{done['id']}").text
    assert "delivery-card is-dead" in html
    assert "Write-back FAILED" in html
    assert "HTTP 422 from the EHR" in html
    assert 'class="delivery-row row-dead"' in html
    assert "failed (dead letter)" in client.get("/ui/sessions").text


def test_unknown_session_is_a_404_page(client: TestClient) -> None:
    r = client.get("/ui/sessions/no-such-session")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Session not found" in r.text
    assert "no-such-session" in r.text
    assert 'href="/ui/sessions"' in r.text


def test_session_page_is_fast(client: TestClient, done: dict[str, Any]) -> None:
    url = f"/ui/sessions/{done['id']}"
    client.get(url)  # templates compiled
    times = []
    for _ in range(7):
        t = time.perf_counter()
        assert client.get(url).status_code == 200
        times.append(time.perf_counter() - t)
    assert statistics.median(times) < 0.1, times


# ---------------------------------------------------------------- static files, offline

ASSETS = ["app.css", "session-chart.js", "vendor/chart.umd.min.js"]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("app.css", "text/css"),
        ("session-chart.js", "javascript"),
        ("vendor/chart.umd.min.js", "javascript"),
        ("vendor/LICENSE.chart.js.md", "markdown"),
    ],
)
def test_static_assets_are_served(client: TestClient, path: str, kind: str) -> None:
    r = client.get(f"/ui/static/{path}")
    assert r.status_code == 200
    assert kind in r.headers["content-type"]
    assert len(r.content) > 500


def test_vendored_chart_library_is_the_pinned_release(client: TestClient) -> None:
    head = client.get("/ui/static/vendor/chart.umd.min.js").text[:200]
    assert "Chart.js v4.6.1" in head
    assert "MIT" in client.get("/ui/static/vendor/LICENSE.chart.js.md").text


URL = re.compile(r"""(?:https?:)?//[a-z0-9][a-z0-9.-]*[a-z0-9](?::\d+)?""", re.I)
LICENSE_BANNER = re.compile(r"/\*!.*?\*/", re.S)


def _foreign_urls(text: str) -> list[str]:
    """Absolute or protocol-relative URLs in ``text`` (any host: the pages use paths only)."""
    return [
        u
        for u in URL.findall(LICENSE_BANNER.sub("", text))
        if u.lower().startswith(("http:", "https:", "//")) and "." in u
    ]


def test_nothing_served_points_at_another_host(client: TestClient, done: dict[str, Any]) -> None:
    _checked_in(client, _order(client, "ocr-web-5"))
    pages = [
        client.get("/ui/sessions"),
        client.get("/ui/sessions", params={"state": "stopped"}),
        client.get("/ui/sessions", params={"since": "bad"}),
        client.get(f"/ui/sessions/{done['id']}"),
        client.get("/ui/sessions/missing"),
    ]
    referenced: set[str] = set()
    for page in pages:
        html = page.text
        assert _foreign_urls(html) == [], page.url
        for attr in re.findall(r'(?:src|href|action)="([^"]*)"', html):
            assert attr.startswith(("/", "?", "#", "data:")), attr
        referenced |= set(re.findall(r'(?:src|href)="(/ui/static/[^"?]+)', html))
    assert {f"/ui/static/{a}" for a in ASSETS} <= referenced
    for asset in referenced:
        body = client.get(asset).text
        # the vendored library keeps its licence banner (with its homepage); nothing else
        assert _foreign_urls(body) == [], asset
        assert "@import" not in body
        assert "fonts.googleapis" not in body
