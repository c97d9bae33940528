"""docker-compose.yml and the Dockerfile stay consistent with the service's settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.infusion_bridge.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_parses_and_wires_hapi_postgres_and_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"hapi", "keycloak", "db", "service"}
    hapi_env = services["hapi"]["environment"]
    assert services["hapi"]["image"].startswith("hapiproject/hapi:v8.8.0")
    assert hapi_env["hapi.fhir.fhir_version"] == "R4"
    assert hapi_env["hapi.fhir.subscription.resthook_enabled"] == "true"
    svc_env = services["service"]["environment"]
    assert svc_env["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert svc_env["INFUSION_EHR_BASE_URL"] == "http://hapi:8080/fhir"
    assert services["service"]["build"] == "."
    realm = services["keycloak"]["volumes"][0].split(":")
    assert (ROOT / realm[0]).is_dir(), "the demo realm is imported from the repo"
    issuer = svc_env["INFUSION_AUTH_ISSUER"]
    assert issuer == f"{services['keycloak']['environment']['KC_HOSTNAME']}/realms/infusion-bridge"


def test_compose_runs_two_replicas_of_the_service_on_postgres() -> None:
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["service"]
    assert service["deploy"]["replicas"] == 2
    assert service["ports"] == ["8000-8001:8000"]  # one host port per replica
    assert service["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")


def test_every_compose_setting_is_a_real_setting() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = {f"INFUSION_{name.upper()}" for name in Settings.model_fields} | {"DATABASE_URL"}
    assert set(compose["services"]["service"]["environment"]) <= known


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"INFUSION_{name.upper()}" in readme, name
