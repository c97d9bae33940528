"""Integration fixtures: one live HAPI FHIR R4 sandbox for the whole test session.

The sandbox is started here (and stopped at the end) unless one already answers on the
test port (``INFUSION_TEST_HAPI_PORT``, default 8081), which is then reused and left
running. There is no skip: if the sandbox cannot start, every integration test errors.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest

from sandbox.hapi_server import HapiSandbox


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[HapiSandbox]:
    box = HapiSandbox(port=int(os.environ.get("INFUSION_TEST_HAPI_PORT", "8081")))
    if not box.is_up():
        box.wipe()
        started = time.monotonic()
        box.start()
        box.started_here = True
        print(f"\nHAPI sandbox up on :{box.port} in {time.monotonic() - started:.0f}s")
    yield box
    if box.started_here and not os.environ.get("INFUSION_TEST_KEEP_SANDBOX"):
        box.stop()


@pytest.fixture
def fhir(sandbox: HapiSandbox) -> Iterator[httpx.Client]:
    """A plain FHIR JSON client on the sandbox, for arranging and checking state."""
    if not sandbox.is_up():  # a disruptive test stopped it: bring it back
        sandbox.start()
    with httpx.Client(
        base_url=sandbox.base_url + "/",
        headers={"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"},
        timeout=60,
    ) as client:
        yield client
