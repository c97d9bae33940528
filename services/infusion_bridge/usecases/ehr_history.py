"""Pull a patient's history from the EHR: earlier MedicationAdministrations of catalog drugs,
body measurements (weight, height, body surface area, LVEF) and the Patient (name, birth
date). Same EHR client (auth, timeouts) as sync; searches page through every match and retry
what may succeed later. Runs on demand and in the background when an infusion order arrives.

What this service wrote back itself (its identifier system) is left out: those doses are
charted here already.
"""

from __future__ import annotations

import asyncio
import time

from anyio.to_thread import run_sync

from fhir_mappings import codes
from fhir_mappings.ehr_history import (
    LOINC_MEASUREMENTS,
    administration_from_fhir,
    administration_search_codes,
    measurement_from_fhir,
    patient_from_fhir,
    written_by,
)

from ..clock import utcnow
from ..domain.ehr_records import EhrHistory
from ..domain.errors import NotFound, Unavailable
from ..domain.orders import patient_reference
from ..ehr.errors import EhrClientError, EhrError
from ..ehr.search import search_matches
from ..logging import get_logger
from ..read_models import EhrPullView
from ..runtime import Runtime
from ..store import audit
from ..store.db import write_transaction
from ..store.ehr_records import save_ehr_history

log = get_logger(__name__)


async def pull_patient_history(
    rt: Runtime, patient_id: str, compartment: str | None = None
) -> EhrPullView:
    """Read the patient's history from the EHR and keep it; ``Unavailable`` if the EHR
    cannot answer. A caller limited to one patient (``compartment``) reaches only that one:
    any other is ``NotFound``, and the EHR is not asked."""
    patient = patient_reference(patient_id)
    if compartment is not None and patient != compartment:
        raise NotFound(f"{patient} is not known")
    audit.note("Patient", patient.removeprefix("Patient/"), patient)
    try:
        history = await _read(rt, patient)
    except EhrError as exc:
        raise Unavailable(f"the EHR cannot answer the history searches now: {exc}") from exc

    def store() -> None:
        with write_transaction(rt.engine) as db:
            save_ehr_history(db, history, now=utcnow())

    await run_sync(store)
    return EhrPullView(
        patient=patient,
        administrations=len(history.administrations),
        measurements=len(history.measurements),
        patient_found=history.details is not None,
        skipped=history.skipped,
    )


REPULL_AFTER_SECONDS = 60.0
"""Orders arriving for a patient pull that patient's EHR history at most this often."""


class OrderPulls:
    """Which patients' history an arriving order should pull now: not one being pulled,
    nor one pulled in the last :data:`REPULL_AFTER_SECONDS` (a burst of orders for one
    patient, a Bundle's worth, is one pull, not one each)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.running: set[str] = set()
        self._started: dict[str, float] = {}
        self._limit = limit

    def due(self, patient: str) -> bool:
        now = time.monotonic()
        started = self._started.get(patient)
        recent = started is not None and now - started < REPULL_AFTER_SECONDS
        if recent or patient in self.running:
            return False
        if len(self._started) >= self._limit:
            self._started = {
                p: t for p, t in self._started.items() if now - t < REPULL_AFTER_SECONDS
            }
        self._started[patient] = now
        return True


async def pull_in_background(rt: Runtime, patient: str, running: set[str]) -> None:
    """A pull started by an arriving order: failures are logged (never the patient), and a
    patient already being pulled is not pulled twice at once."""
    if patient in running:
        return
    running.add(patient)
    try:
        summary = await pull_patient_history(rt, patient)
        log.info(
            "ehr_history_pulled",
            administrations=summary.administrations,
            measurements=summary.measurements,
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a background task must not die silently nor crash the app
        log.warning("ehr_history_pull_failed", error=type(exc).__name__)
    finally:
        running.discard(patient)


async def _read(rt: Runtime, patient: str) -> EhrHistory:
    own = rt.settings.identifier_system
    administrations = await search_matches(
        rt.ehr,
        "MedicationAdministration",
        {"patient": patient, "code": administration_search_codes(rt.catalog), "_count": "100"},
    )
    observations = await search_matches(
        rt.ehr,
        "Observation",
        {
            "patient": patient,
            "code": ",".join(f"{codes.LOINC}|{c}" for c in LOINC_MEASUREMENTS),
            "_sort": "-date",
            "_count": "100",
        },
    )
    try:
        patient_resource = await rt.ehr.read("Patient", patient.rsplit("/", 1)[-1])
    except EhrClientError:
        patient_resource = None  # not known to the EHR (or not visible to us)
    mapped_admins = [
        administration_from_fhir(r, rt.catalog) for r in administrations if not written_by(r, own)
    ]
    mapped_obs = [measurement_from_fhir(r) for r in observations if not written_by(r, own)]
    admins = tuple(a for a in mapped_admins if a is not None)
    measurements = tuple(m for m in mapped_obs if m is not None)
    return EhrHistory(
        patient=patient,
        administrations=tuple(a.model_copy(update={"patient": patient}) for a in admins),
        measurements=tuple(m.model_copy(update={"patient": patient}) for m in measurements),
        details=patient_from_fhir(patient_resource, patient) if patient_resource else None,
        skipped=(len(mapped_admins) - len(admins)) + (len(mapped_obs) - len(measurements)),
    )
