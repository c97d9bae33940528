"""The FHIR resources of finished sessions, as served on ``/fhir``. No commit here.

They are written once, when the session finishes, and never change: each is served as
version ``1`` with ``meta.lastUpdated`` = when it was stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, func
from sqlmodel import Session, col, select

from fhir_mappings.local_resources import category_codes, effective_time

from ..read_models import SearchPage
from .db import insert_ignore
from .tables import FhirResourceRow

Json = dict[str, Any]


def store_resources(
    db: Session, session_id: str, patient: str, resources: list[dict[str, Any]], *, now: datetime
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
                "last_updated": now,
                "resource_json": resource,
            }
        )
    if rows:
        db.execute(insert_ignore(db, FhirResourceRow), rows)  # executemany


def served(row: Any) -> Json:
    """The resource with its ``meta``: version 1, last updated when it was stored."""
    meta: Json = {**(row.resource_json.get("meta") or {}), "versionId": "1"}
    if row.last_updated is not None:
        when = row.last_updated
        meta["lastUpdated"] = (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
    return {**row.resource_json, "meta": meta}


def get_resource(db: Session, resource_type: str, resource_id: str) -> tuple[str, Json] | None:
    """The resource and the patient it belongs to."""
    row = db.get(FhirResourceRow, resource_id)
    if row is None or row.resource_type != resource_type:
        return None
    return row.patient, served(row)


def search_resources(
    db: Session,
    resource_type: str,
    *,
    patient: str | None = None,
    category: str | None = None,
    after: list[tuple[str, datetime]] | None = None,
    offset: int = 0,
    limit: int = 50,
) -> SearchPage:
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
    total = db.exec(select(func.count()).select_from(query.subquery())).one()
    rows = db.exec(
        query.order_by(col(FhirResourceRow.effective).desc(), col(FhirResourceRow.id))
        .offset(offset)
        .limit(limit)
    ).all()
    return SearchPage(total, [served(r) for r in rows])


def session_resources(db: Session, session_id: str, resource_type: str | None = None) -> list[Json]:
    """The FHIR record of one finished session (optionally only one resource type)."""
    conn = db.connection()  # Core, built once: a session's page and every event read this
    if resource_type is None:
        rows = conn.execute(_OF_SESSION, {"key": session_id})
    else:
        rows = conn.execute(_OF_SESSION_TYPED, {"key": session_id, "type": resource_type})
    return [served(r) for r in rows]


_RESOURCES: Table = FhirResourceRow.__table__  # type: ignore[attr-defined]
_OF_SESSION = _RESOURCES.select().where(_RESOURCES.c.session_id == bindparam("key"))
_OF_SESSION_TYPED = _OF_SESSION.where(_RESOURCES.c.resource_type == bindparam("type"))
