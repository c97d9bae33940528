"""SMART Backend Services against respx: the client assertion's header and claims, token
caching and renewal, a refused assertion, key files, and that tokens never reach the logs."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from services.infusion_bridge.cli import cli
from services.infusion_bridge.ehr.backend_auth import ASSERTION_TYPE, BackendServicesAuth
from services.infusion_bridge.ehr.client import EhrClient
from services.infusion_bridge.ehr.errors import EhrAuthenticationFailed
from services.infusion_bridge.ehr.keys import SigningKey, generate_key_pair, load_signing_key
from services.infusion_bridge.logging import configure_logging

BASE = "http://ehr.test/fhir"
TOKEN_URL = "http://auth.test/token"
SECRET_TOKEN = "eyJ-the-access-token-must-never-be-logged"
BUNDLE = {"resourceType": "Bundle", "type": "searchset", "total": 0}

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return generate_key_pair(tmp_path_factory.mktemp("k") / "service.pem")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def ehr(rsa_key: SigningKey, clock: Clock) -> AsyncIterator[EhrClient]:
    auth = BackendServicesAuth(
        client_id="infusion-bridge-backend",
        key=rsa_key,
        scopes="system/Observation.c system/MedicationRequest.rs",
        ehr_base_url=BASE,
        http=httpx.AsyncClient(),
        clock=clock,
    )
    async with EhrClient(BASE, auth=auth) as client:
        yield client


def _token_route(*answers: httpx.Response) -> respx.Route:
    respx.get(f"{BASE}/.well-known/smart-configuration").respond(
        200, json={"token_endpoint": TOKEN_URL}
    )
    return respx.post(TOKEN_URL).mock(side_effect=list(answers))


def _granted(token: str = SECRET_TOKEN, expires_in: int = 300) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    )


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


@respx.mock
async def test_the_assertion_is_signed_rs384_with_kid_and_the_smart_claims(
    ehr: EhrClient, rsa_key: SigningKey, clock: Clock
) -> None:
    token = _token_route(_granted(), _granted("second"))
    respx.get(f"{BASE}/Observation").respond(200, json=BUNDLE)
    await ehr.search("Observation")
    assert isinstance(ehr.auth, BackendServicesAuth)
    await ehr.auth.access_token(stale=SECRET_TOKEN)  # a second assertion: jti must differ

    forms = [_form(call.request) for call in token.calls]
    assert forms[0]["grant_type"] == "client_credentials"
    assert forms[0]["client_assertion_type"] == ASSERTION_TYPE
    assert forms[0]["scope"] == "system/Observation.c system/MedicationRequest.rs"
    assertion = forms[0]["client_assertion"]
    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": "RS384", "kid": rsa_key.kid, "typ": "JWT"}
    claims = jwt.decode(
        assertion,
        rsa_key.private_key.public_key(),  # type: ignore[arg-type]
        algorithms=["RS384"],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == "infusion-bridge-backend"
    assert claims["aud"] == TOKEN_URL
    assert claims["iat"] == int(clock.now)
    assert 0 < claims["exp"] - claims["iat"] <= 300
    second = jwt.decode(forms[1]["client_assertion"], options={"verify_signature": False})
    assert second["jti"] != claims["jti"]


async def test_an_ec_p384_key_signs_es384(tmp_path: Path) -> None:
    key = generate_key_pair(tmp_path / "ec.pem", kind="ec")
    auth = BackendServicesAuth(
        client_id="c", key=key, scopes="", ehr_base_url=BASE, http=httpx.AsyncClient()
    )
    assertion = auth.client_assertion(TOKEN_URL)
    assert jwt.get_unverified_header(assertion)["alg"] == "ES384"
    public = key.private_key.public_key()
    assert jwt.decode(assertion, public, algorithms=["ES384"], audience=TOKEN_URL)["sub"] == "c"  # type: ignore[arg-type]
    await auth.aclose()


@respx.mock
async def test_one_token_serves_many_requests_until_shortly_before_it_expires(
    ehr: EhrClient, clock: Clock
) -> None:
    token = _token_route(_granted("t1", expires_in=60), _granted("t2", expires_in=60))
    search = respx.get(f"{BASE}/Observation").respond(200, json=BUNDLE)
    for _ in range(10):
        await ehr.search("Observation")
        clock.now += 5  # 50 s in all: still before 60 s less a tenth
    assert token.call_count == 1
    clock.now += 5  # 55 s: inside the renewal margin
    await ehr.search("Observation")
    assert token.call_count == 2
    assert search.calls[-1].request.headers["Authorization"] == "Bearer t2"
    assert search.calls[0].request.headers["Authorization"] == "Bearer t1"


@respx.mock
async def test_a_401_renews_the_token_once_and_retries(ehr: EhrClient) -> None:
    token = _token_route(_granted("revoked"), _granted("fresh"))
    search = respx.get(f"{BASE}/Observation").mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json=BUNDLE)]
    )
    assert (await ehr.search("Observation"))["total"] == 0
    assert token.call_count == 2
    assert [c.request.headers["Authorization"] for c in search.calls] == [
        "Bearer revoked",
        "Bearer fresh",
    ]


@respx.mock
async def test_a_refused_assertion_is_a_retryable_authentication_failure_with_the_reason(
    ehr: EhrClient, clock: Clock
) -> None:
    refused = httpx.Response(
        401, json={"error": "invalid_client", "error_description": "Unable to load public key"}
    )
    token = _token_route(refused, refused)
    search = respx.get(f"{BASE}/Observation").respond(200, json=BUNDLE)
    with pytest.raises(EhrAuthenticationFailed) as failed:
        await ehr.search("Observation")
    assert failed.value.retryable
    assert "invalid_client" in str(failed.value)
    assert "Unable to load public key" in str(failed.value)
    with pytest.raises(EhrAuthenticationFailed):  # held briefly: not asked again at once
        await ehr.search("Observation")
    assert token.call_count == 1
    clock.now += 6
    with pytest.raises(EhrAuthenticationFailed):
        await ehr.search("Observation")
    assert token.call_count == 2
    assert search.call_count == 0  # nothing reaches the EHR without a token


@respx.mock
async def test_the_token_never_appears_in_the_logs(
    ehr: EhrClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", "json")
    _token_route(_granted(), _granted())
    respx.get(f"{BASE}/Observation").mock(
        side_effect=[httpx.Response(401), httpx.Response(200, json=BUNDLE)]
    )
    await ehr.search("Observation")
    err = capsys.readouterr().err
    assert "ehr_token_issued" in err  # the logs were captured
    assert SECRET_TOKEN not in err
    assert "client_assertion" not in err


def test_keys_generate_writes_a_private_key_only_its_owner_reads_and_its_jwks(
    tmp_path: Path,
) -> None:
    out = tmp_path / "keys" / "service.pem"
    result = CliRunner().invoke(cli, ["keys", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    key = load_signing_key(out.read_bytes())
    jwks = json.loads((tmp_path / "keys" / "service.jwks.json").read_text())
    assert jwks["keys"] == [key.public_jwk]
    assert "d" not in jwks["keys"][0]  # the public half only
    assert key.public_jwk["alg"] == "RS384"
    assert key.kid in result.output
    again = CliRunner().invoke(cli, ["keys", "generate", "--out", str(out)])
    assert again.exit_code == 1  # never overwrites a key


def test_small_rsa_keys_are_refused(tmp_path: Path) -> None:
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - on purpose
    weak = weak_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="2048"):
        load_signing_key(weak)
