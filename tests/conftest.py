"""Shared fixtures: settings on a throwaway SQLite file, and the app under test."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harness.identity import ISSUER_FOR_TESTS, signed_in_client
from harness.staff_auth import StaffAuth
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.settings import Settings

FAKE_EHR = "http://ehr.test/fhir"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        ehr_base_url=FAKE_EHR,
        ehr_timeout_seconds=2,
        log_format="console",
        sync_interval_seconds=0,
        delivery_enabled=False,  # worker tests drive it themselves
        ehr_history_on_order=False,  # no background EHR searches against the fake EHR
        **ISSUER_FOR_TESTS.settings(),
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app in-process; requests carry a token with every role and scope."""
    with signed_in_client(settings) as c:
        yield c


@pytest.fixture(scope="session")
def keycloak() -> Iterator[KeycloakSandbox]:
    """The Keycloak sandbox (identity provider) for tests that need real tokens; started
    here unless one already serves the demo realm on ``INFUSION_TEST_KEYCLOAK_PORT``."""
    box = KeycloakSandbox(port=int(os.environ.get("INFUSION_TEST_KEYCLOAK_PORT", "8181")))
    if not box.is_up():
        started = time.monotonic()
        box.start()
        box.started_here = True
        print(f"\nKeycloak sandbox up on :{box.port} in {time.monotonic() - started:.0f}s")
    yield box
    if box.started_here and not os.environ.get("INFUSION_TEST_KEEP_SANDBOX"):
        box.stop()


@pytest.fixture(scope="session")
def staff(keycloak: KeycloakSandbox) -> StaffAuth:
    """Real tokens per request: the EHR pushes, a nurse charts, a clinician reads..."""
    return StaffAuth(keycloak)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run tests that stop or restart the shared sandbox after all the others."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)
