"""The HAPI FHIR generic client (Java, ``hapi-fhir-client`` 8.8.0 from Maven Central) against
the live service: ``hapi-client/`` is built with Maven and run once; each step it reports
is one test here. Its FhirContext parses strictly, so every returned resource is checked
against HAPI's R4 model."""

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
    "json-only-406",
]


@pytest.fixture(scope="module")
def built() -> None:
    build("hapi-client")


@pytest.fixture(scope="module")
def report(
    service_base: str,
    built: None,
    auth_headers: dict[str, str],  # after the build: the token is fresh for the run
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, object]]:
    template = Path(tmp_path_factory.mktemp("hapi")) / "order.json"
    template.write_text(json.dumps(medication_request()))
    target = HERE / "hapi-client" / "target"
    classpath = f"{target / 'classes'}:{(target / 'classpath.txt').read_text().strip()}"
    return run_driver(
        [
            "java",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            classpath,
            "org.infusionbridge.interop.HapiClientDriver",
            service_base,
            str(template),
            *header_args(auth_headers),
        ]
    )


@pytest.mark.parametrize("step", STEPS)
def test_hapi_client(report: dict[str, dict[str, object]], step: str) -> None:
    assert step in report, f"the driver did not run {step}"
    assert report[step]["ok"], report[step]["detail"]


def test_no_unexpected_steps(report: dict[str, dict[str, object]]) -> None:
    assert sorted(report) == sorted(STEPS)
