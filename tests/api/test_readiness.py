"""Readiness never waits on the EHR: a hung EHR (accepts, never answers) gets 503 in < 1 s.

The service runs in its own process with sign-in on, trusting a local issuer served over
loopback (``harness.identity.served_issuer``); readiness itself is public."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from harness.fhir_payloads import medication_request
from harness.hung_ehr import hung_ehr
from harness.identity import LocalIssuer, served_issuer
from harness.service_process import service_process as harness_service_process
from harness.timelines import completed_timeline, run_session, start_of_yesterday

PROBES = 25
PROBE_TIMEOUT_SECONDS = 2  # the default


@contextmanager
def service_process(tmp_path: Path, ehr: str, issuer: LocalIssuer) -> Iterator[str]:
    """The service in its own process (as deployed), so the probes measure it alone; its
    delivery worker on, so that its own call to the EHR hangs too."""
    with harness_service_process(
        f"sqlite:///{tmp_path / 'store.db'}",
        tmp_path / "service.log",
        extra_env={  # default timeouts: EHR calls 10 s, the probe 2 s
            "INFUSION_EHR_BASE_URL": ehr,
            "INFUSION_DELIVERY_ENABLED": "true",
            "INFUSION_AUTH_ISSUER": issuer.issuer,
            "INFUSION_AUTH_DISABLED": "false",
        },
    ) as (url, _):
        yield url


def probe_all(svc: httpx.Client) -> list[tuple[float, httpx.Response]]:
    """``PROBES`` readiness probes at once; (seconds, response) of each."""

    def one(_: int) -> tuple[float, httpx.Response]:
        started = time.monotonic()
        response = svc.get("/health/ready")
        return time.monotonic() - started, response

    with ThreadPoolExecutor(PROBES) as pool:
        return list(pool.map(one, range(PROBES)))


def test_ready_answers_within_a_second_while_the_ehr_hangs(tmp_path: Path) -> None:
    with (
        hung_ehr() as ehr,
        served_issuer() as issuer,
        service_process(tmp_path, ehr, issuer) as url,
        httpx.Client(
            base_url=url,
            timeout=30,
            limits=httpx.Limits(max_connections=PROBES),
            headers=issuer.headers(),  # the order, the session, /deliveries; probes need none
        ) as svc,
    ):
        put = svc.put(
            "/fhir/MedicationRequest/ocr-h",
            json=medication_request(id="ocr-h"),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert put.status_code == 201
        run_session(svc, "ocr-h", completed_timeline(start_of_yesterday(), vitals=1))
        # the write-back now hangs on the EHR for its 10 s read timeout
        rounds = [probe_all(svc)]
        time.sleep(PROBE_TIMEOUT_SECONDS + 0.5)  # the first probe has given up by now
        rounds.append(probe_all(svc))
        delivery = svc.get("/deliveries").json()[0]
    for results in rounds:
        slowest = max(seconds for seconds, _ in results)
        assert slowest < 1, f"slowest readiness probe took {slowest:.2f}s"
        assert {r.status_code for _, r in results} == {503}
        assert all(r.json()["checks"]["database"]["status"] == "ok" for _, r in results)
    assert rounds[0][0][1].json()["checks"]["ehr"]["status"] == "down"
    assert rounds[1][0][1].json()["checks"]["ehr"]["reason"] == "no answer in 2s"
    assert delivery["status"] == "delivering"  # the worker's call really was hanging
