"""The EHR client against respx: success, timeouts, 4xx/5xx with OperationOutcome, bad JSON."""

from __future__ import annotations

import httpx
import pytest
import respx

from services.infusion_bridge.ehr.client import EhrClient, next_link, parse_retry_after
from services.infusion_bridge.ehr.errors import (
    EhrAuthenticationFailed,
    EhrClientError,
    EhrInvalidResponse,
    EhrServerError,
    EhrUnavailable,
)
from services.infusion_bridge.ehr.health import EhrHealth
from services.infusion_bridge.metrics import Metrics

BASE = "http://ehr.test/fhir"
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "processing", "diagnostics": "HAPI-0450: bad id"}],
}

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def ehr():
    async with EhrClient(BASE, timeout=0.5, connect_timeout=0.5) as client:
        yield client


@respx.mock
async def test_read_returns_parsed_json_and_sends_fhir_accept(ehr: EhrClient) -> None:
    route = respx.get(f"{BASE}/Patient/p1").respond(
        200, json={"resourceType": "Patient", "id": "p1"}
    )
    body = await ehr.read("Patient", "p1")
    assert body == {"resourceType": "Patient", "id": "p1"}
    assert route.calls.last.request.headers["accept"] == "application/fhir+json"


@respx.mock
async def test_conditional_create_sends_if_none_exist_and_exposes_etag(ehr: EhrClient) -> None:
    route = respx.post(f"{BASE}/Observation").respond(
        201,
        json={"resourceType": "Observation", "id": "o1"},
        headers={"ETag": 'W/"1"', "Location": f"{BASE}/Observation/o1/_history/1"},
    )
    res = await ehr.create(
        {"resourceType": "Observation", "status": "final"}, if_none_exist="identifier=s|v"
    )
    sent = route.calls.last.request
    assert sent.headers["if-none-exist"] == "identifier=s|v"
    assert sent.headers["content-type"] == "application/fhir+json"
    assert res.status_code == 201
    assert res.etag == 'W/"1"'
    assert res.location.endswith("/Observation/o1/_history/1")


@respx.mock
async def test_timeout_raises_retryable_unavailable(ehr: EhrClient) -> None:
    respx.get(f"{BASE}/metadata").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(EhrUnavailable, match="timed out") as info:
        await ehr.metadata()
    assert info.value.retryable


@respx.mock
async def test_connection_refused_raises_unavailable(ehr: EhrClient) -> None:
    respx.get(f"{BASE}/metadata").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(EhrUnavailable, match="unreachable"):
        await ehr.metadata()


@respx.mock
async def test_4xx_carries_operation_outcome_and_is_not_retryable(ehr: EhrClient) -> None:
    respx.get(f"{BASE}/Patient/bad").respond(400, json=OUTCOME)
    with pytest.raises(EhrClientError) as info:
        await ehr.read("Patient", "bad")
    err = info.value
    assert err.status_code == 400
    assert err.outcome == OUTCOME
    assert "HAPI-0450: bad id" in str(err)
    assert err.diagnostics == "error: HAPI-0450: bad id"
    assert not err.retryable


@respx.mock
async def test_429_is_retryable_with_retry_after(ehr: EhrClient) -> None:
    respx.post(f"{BASE}/").respond(429, headers={"Retry-After": "7"}, text="slow down")
    with pytest.raises(EhrClientError) as info:
        await ehr.transaction({"resourceType": "Bundle", "type": "transaction"})
    assert info.value.retryable
    assert info.value.retry_after == 7.0
    assert info.value.outcome is None


@respx.mock
async def test_5xx_raises_server_error(ehr: EhrClient) -> None:
    respx.get(f"{BASE}/metadata").respond(503, json=OUTCOME)
    with pytest.raises(EhrServerError) as info:
        await ehr.metadata()
    assert info.value.retryable
    assert info.value.status_code == 503


@respx.mock
async def test_malformed_json_on_success_raises_invalid_response(ehr: EhrClient) -> None:
    respx.get(f"{BASE}/metadata").respond(
        200, content=b"{not json", headers={"Content-Type": "application/fhir+json"}
    )
    with pytest.raises(EhrInvalidResponse) as info:
        await ehr.metadata()
    assert not info.value.retryable


@respx.mock
async def test_search_pages_follows_next_links(ehr: EhrClient) -> None:
    page2_url = f"{BASE}?_getpages=abc&_getpagesoffset=2"
    respx.get(f"{BASE}/MedicationRequest").respond(
        200,
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": page2_url}],
            "entry": [{"resource": {"id": "a"}}, {"resource": {"id": "b"}}],
        },
    )
    respx.get(page2_url).respond(
        200,
        json={"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"id": "c"}}]},
    )
    ids = [
        e["resource"]["id"]
        async for page in ehr.search_pages("MedicationRequest", {"_count": "2"})
        for e in page["entry"]
    ]
    assert ids == ["a", "b", "c"]


def test_next_link_and_retry_after_parsing() -> None:
    assert next_link({"link": [{"relation": "self", "url": "x"}]}) is None
    assert next_link({"link": [{"relation": "next", "url": "y"}]}) == "y"
    assert parse_retry_after(None) is None
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


class _RefusedAuth(httpx.Auth):
    """An authorization that cannot get a token (as BackendServicesAuth with a wrong key)."""

    async def async_auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        raise EhrAuthenticationFailed("EHR authentication failed: invalid_client (test)")
        yield request  # pragma: no cover


async def test_a_refused_token_is_an_authentication_error_in_metrics_and_health() -> None:
    metrics, health = Metrics(), EhrHealth()
    async with EhrClient(BASE, auth=_RefusedAuth(), metrics=metrics, health=health) as ehr:
        with pytest.raises(EhrAuthenticationFailed):
            await ehr.metadata()
    assert metrics.ehr_errors.labels("authentication")._value.get() == 1
    assert health.up is False
