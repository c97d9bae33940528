"""``/.well-known/jwks.json``: the public half of the service's signing key, without sign-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harness.identity import signed_in_app
from services.infusion_bridge.ehr.keys import generate_key_pair
from services.infusion_bridge.settings import Settings


def test_the_key_set_is_public_and_holds_only_the_public_key(
    settings: Settings, tmp_path: Path
) -> None:
    key = generate_key_pair(tmp_path / "service.pem")
    configured = settings.model_copy(
        update={
            "ehr_client_id": "infusion-bridge-backend",
            "ehr_private_key_path": tmp_path / "service.pem",
        }
    )
    with TestClient(signed_in_app(configured)) as anonymous:  # no Authorization header
        r = anonymous.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/jwk-set+json")
    assert r.json() == {"keys": [key.public_jwk]}
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(r.json()["keys"][0])


def test_without_a_key_the_set_is_empty(settings: Settings) -> None:
    with TestClient(signed_in_app(settings)) as anonymous:
        assert anonymous.get("/.well-known/jwks.json").json() == {"keys": []}


def test_a_client_id_without_a_key_refuses_to_start(settings: Settings) -> None:
    configured = settings.model_copy(update={"ehr_client_id": "infusion-bridge-backend"})
    with (
        pytest.raises(RuntimeError, match="INFUSION_EHR_PRIVATE_KEY_PATH"),
        TestClient(signed_in_app(configured)),
    ):
        pass
