"""fhir-kit-client (Node.js, from npm at the version package-lock.json pins) against the live
service: ``node/driver.mjs`` runs every step once; each step it reports is one test here.
The library has no resource models, so the driver checks each returned resource's type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.fhir_payloads import medication_request

from ._drivers import HERE, build, header_args, run_driver

STEPS = [
    "capabilities",
    "create-read-vread",
    "conditional-create",
    "update-read-modify-write",
    "stale-if-match-412",
    "delete",
    "transaction",
    "search-paging-both-ways",
    "summary-count",
]


@pytest.fixture(scope="module")
def built() -> None:
    build("node")


@pytest.fixture(scope="module")
def report(
    service_base: str,
    built: None,
    auth_headers: dict[str, str],  # after the build: the token is fresh for the run
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, object]]:
    template = Path(tmp_path_factory.mktemp("fkc")) / "order.json"
    template.write_text(json.dumps(medication_request()))
    driver = HERE / "node" / "driver.mjs"
    return run_driver(
        ["node", str(driver), service_base, str(template), *header_args(auth_headers)]
    )


@pytest.mark.parametrize("step", STEPS)
def test_fhir_kit_client(report: dict[str, dict[str, object]], step: str) -> None:
    assert step in report, f"the driver did not run {step}"
    assert report[step]["ok"], report[step]["detail"]


def test_no_unexpected_steps(report: dict[str, dict[str, object]]) -> None:
    assert sorted(report) == sorted(STEPS)
