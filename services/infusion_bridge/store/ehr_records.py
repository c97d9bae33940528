"""What was read from the EHR about a patient (``ehr_records``). Callers own the transaction.

A record is replaced by a newer read of the same EHR resource; what the EHR no longer returns
stays (an EHR history is evidence that was seen, with its version).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, bindparam, delete
from sqlmodel import Session, col, select

from ..domain.ehr_records import BodyMeasurement, EhrAdministration, EhrHistory, PatientDetails
from .tables import EhrRecordRow


def save_ehr_history(db: Session, history: EhrHistory, *, now: datetime) -> int:
    """Store every record of one pull (replacing earlier reads of the same resources)."""
    rows: list[EhrRecordRow] = []
    for a in history.administrations:
        rows.append(
            _row(
                f"MedicationAdministration/{a.resource_id}",
                a.patient,
                "administration",
                a.version_id,
                a.given_at,
                a.model_dump(mode="json"),
                now,
            )
        )
    for m in history.measurements:
        rows.append(
            _row(
                f"Observation/{m.resource_id}",
                m.patient,
                m.kind,
                m.version_id,
                m.effective,
                m.model_dump(mode="json"),
                now,
            )
        )
    if history.details is not None:
        d = history.details
        rows.append(
            _row(d.patient, d.patient, "patient", None, None, d.model_dump(mode="json"), now)
        )
    if rows:
        db.execute(delete(EhrRecordRow).where(col(EhrRecordRow.key).in_([r.key for r in rows])))
        db.add_all(rows)
    return len(rows)


def ehr_patient_details(db: Session, patient: str) -> PatientDetails | None:
    """The Patient's details kept from the EHR (name, birth date), if pulled."""
    row = db.connection().execute(_PATIENT_DETAILS, {"patient": patient}).first()
    return PatientDetails.model_validate(row.record_json) if row is not None else None


_RECORDS: Table = EhrRecordRow.__table__  # type: ignore[attr-defined]
_PATIENT_DETAILS = _RECORDS.select().where(
    _RECORDS.c.patient == bindparam("patient"), _RECORDS.c.kind == "patient"
)


def ehr_history_for(db: Session, patient: str) -> EhrHistory:
    """Everything kept from the EHR for ``patient`` (a ``Patient/<id>`` reference)."""
    rows = db.exec(select(EhrRecordRow).where(EhrRecordRow.patient == patient)).all()
    administrations = [
        EhrAdministration.model_validate(r.record_json) for r in rows if r.kind == "administration"
    ]
    measurements = [
        BodyMeasurement.model_validate(r.record_json)
        for r in rows
        if r.kind not in ("administration", "patient")
    ]
    details = next(
        (PatientDetails.model_validate(r.record_json) for r in rows if r.kind == "patient"), None
    )
    return EhrHistory(
        patient=patient,
        administrations=tuple(sorted(administrations, key=lambda a: a.given_at)),
        measurements=tuple(sorted(measurements, key=lambda m: m.effective)),
        details=details,
    )


def _row(
    key: str,
    patient: str,
    kind: str,
    version_id: str | None,
    effective: datetime | None,
    record: dict[str, object],
    now: datetime,
) -> EhrRecordRow:
    return EhrRecordRow(
        key=key,
        patient=patient,
        kind=kind,
        version_id=version_id,
        effective=effective,
        fetched_at=now,
        record_json=record,
    )
