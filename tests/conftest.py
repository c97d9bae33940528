"""Shared fixtures: settings on a throwaway SQLite file, and the app under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.infusion_bridge.app import create_app
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
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run tests that stop or restart the shared sandbox after all the others."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)
