"""The interop suite: the service driven by FHIR clients nobody here wrote.

One live service (uvicorn on a free port, its own SQLite file) serves every client in the
session; each test makes its own orders (unique identifiers, its own patient), so tests do
not see each other's data. The EHR is not on these paths (no remote Medication, no
write-back), so the service points at a closed port.

Sign-in: the service trusts the Keycloak sandbox (the session's ``keycloak`` fixture), and
every client gets its request headers from :func:`auth_headers`, the one place that hands
out ``Authorization: Bearer ...``: the EHR client's token (client credentials;
``system/MedicationRequest.cud`` and ``.rs``), which is all the MedicationRequest flows
here need. A step that read session records (MedicationAdministration, Observation) would
need a clinician's token (``user/`` scopes and a role): ``keycloak.token("clinician")``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.live_service import free_port, running_service
from harness.staff_auth import trusting
from sandbox.keycloak_server import KeycloakSandbox
from services.infusion_bridge.settings import Settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "interop" in str(item.path):
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def service_base(
    keycloak: KeycloakSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The service's FHIR base URL (``http://127.0.0.1:<port>/fhir``)."""
    db = Path(tmp_path_factory.mktemp("interop")) / "store.db"
    settings = Settings(
        database_url=f"sqlite:///{db}",
        ehr_base_url=f"http://127.0.0.1:{free_port()}/fhir",
        log_format="console",
        log_level="WARNING",
        sync_interval_seconds=0,
        delivery_enabled=False,
        **trusting(keycloak),
    )
    with running_service(settings) as url:
        yield f"{url}/fhir"


@pytest.fixture(scope="module")
def auth_headers(keycloak: KeycloakSandbox) -> dict[str, str]:
    """Headers every interop client sends: the EHR client's bearer token from Keycloak.
    A fresh one per module (tokens live 5 minutes; a module runs well within that)."""
    return {"Authorization": f"Bearer {keycloak.token('ehr')}"}


@pytest.fixture
def patient() -> str:
    """A patient of this test's own, so searches count only this test's orders."""
    return f"interop-{uuid.uuid4().hex[:12]}"
