"""The FHIR resources of finished sessions, as served on ``/fhir``. No commit here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from fhir_mappings.local_resources import category_codes, effective_time

from .db import insert_ignore
from .tables import FhirResourceRow


def store_resources(
    session: Session, session_id: str, patient: str, resources: list[dict[str, Any]]
) -> None:
    """Keep a finished session's resources (one statement; ids are stable, so a repeat
    of the same resource is skipped)."""
    rows = []
    for resource in resources:
        categories = category_codes(resource)
        rows.append(
            {
                "id": resource["id"],
                "resource_type": resource["resourceType"],
                "session_id": session_id,
                "patient": patient,
                "effective": effective_time(resource),
                "category": categories[0] if categories else None,
                "resource_json": resource,
            }
        )
    if rows:
        session.execute(insert_ignore(session, FhirResourceRow), rows)  # executemany


def get_resource(session: Session, resource_type: str, resource_id: str) -> FhirResourceRow | None:
    row = session.get(FhirResourceRow, resource_id)
    return row if row is not None and row.resource_type == resource_type else None


def search_resources(
    session: Session,
    resource_type: str,
    *,
    patient: str | None = None,
    category: str | None = None,
    after: list[tuple[str, datetime]] | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, Sequence[FhirResourceRow]]:
    """Resources of one type, newest first. ``after`` holds (prefix, instant) date bounds."""
    query = select(FhirResourceRow).where(FhirResourceRow.resource_type == resource_type)
    if patient:
        query = query.where(FhirResourceRow.patient == patient)
    if category:
        query = query.where(FhirResourceRow.category == category)
    for prefix, instant in after or []:
        column = col(FhirResourceRow.effective)
        query = query.where(
            {
                "eq": column == instant,
                "gt": column > instant,
                "ge": column >= instant,
                "lt": column < instant,
                "le": column <= instant,
            }[prefix]
        )
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(FhirResourceRow.effective).desc(), col(FhirResourceRow.id))
        .offset(offset)
        .limit(limit)
    ).all()
    return total, rows


def session_resources(session: Session, session_id: str) -> Sequence[FhirResourceRow]:
    return session.exec(
        select(FhirResourceRow).where(FhirResourceRow.session_id == session_id)
    ).all()
