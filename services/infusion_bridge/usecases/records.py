"""Clinician reads: session lists, a patient's infusion history, FHIR searches and reads of
finished sessions' resources, and a finished session as one collection."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anyio.to_thread import run_sync

from ..domain.ehr_records import EhrHistory, MeasurementKind, body_surface_area, latest
from ..domain.errors import NotFound
from ..domain.history import Dose, OrderTiming, patient_history, with_mg_per_m2
from ..domain.orders import patient_reference
from ..read_models import (
    InfusionHistory,
    OrderRecord,
    SearchPage,
    SessionListing,
    SessionPage,
    SessionRecord,
    SessionSummary,
    patient_details,
)
from ..runtime import Runtime
from ..store import audit, outbox
from ..store.db import transaction
from ..store.ehr_records import ehr_history_for
from ..store.fhir_resources import get_resource, search_resources, session_resources
from ..store.infusion_sessions import get_infusion_session, list_sessions
from ..store.order_queries import active_infusion_orders, body_surface_areas

Json = dict[str, Any]


@dataclass(frozen=True)
class SessionFilters:
    patient: str | None = None
    state: str | None = None
    drug: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    offset: int = 0
    limit: int = 50


def limit_to(patient: str | None, compartment: str | None) -> tuple[str | None, bool]:
    """The patient a query may cover: the asked one, or the caller's only one; and whether
    the query can find anything at all (asking for another patient finds nothing)."""
    if compartment is None:
        return patient, True
    return compartment, patient in (None, compartment)


async def session_listing(
    rt: Runtime, f: SessionFilters, compartment: str | None = None
) -> SessionListing:
    """Sessions matching the filters, newest first, with their delivery statuses."""
    patient, possible = limit_to(patient_reference(f.patient) if f.patient else None, compartment)
    if not possible:
        return SessionListing(0, [], {})

    def load() -> SessionListing:
        with transaction(rt.engine) as db:
            total, records = list_sessions(
                db,
                patient=patient,
                state=f.state,
                drug=f.drug,
                since=f.since,
                until=f.until,
                offset=f.offset,
                limit=f.limit,
            )
            statuses = outbox.statuses_by_session(db, [r.id for r in records])
        for r in records:
            audit.note("Session", r.id, r.patient)
        return SessionListing(total, records, statuses)

    return await run_sync(load)


async def session_page(
    rt: Runtime, f: SessionFilters, compartment: str | None = None
) -> SessionPage:
    """The JSON page of :func:`session_listing`."""
    listing = await session_listing(rt, f, compartment)
    return SessionPage(
        total=listing.total,
        offset=f.offset,
        limit=f.limit,
        items=[SessionSummary.of(r, listing.statuses[r.id]) for r in listing.records],
    )


async def infusion_history(
    rt: Runtime, patient_id: str, compartment: str | None = None
) -> InfusionHistory:
    """Every session of the patient (newest first), total dose per drug (charted here and read
    from the EHR), the mitoxantrone cumulative dose in mg/m2, and the next due date per drug
    with the rule and the doses behind it."""
    patient = patient_reference(patient_id)
    if compartment is not None and patient != compartment:
        raise NotFound(f"{patient} is not known")
    audit.note("Patient", patient.removeprefix("Patient/"), patient)

    def load() -> _HistoryInputs:
        with transaction(rt.engine) as db:
            _, records = list_sessions(db, patient=patient, limit=None)
            return _HistoryInputs(
                records=records,
                bsa=body_surface_areas(db, {r.order_id for r in records}),
                statuses=outbox.statuses_by_session(db, [r.id for r in records]),
                ehr=ehr_history_for(db, patient),
                orders=active_infusion_orders(db, patient),
            )

    data = await run_sync(load)
    sessions_per_drug: dict[str, int] = defaultdict(int)
    doses = all_doses(data.records, data.bsa, data.ehr)
    for r in data.records:
        sessions_per_drug[r.drug_key] += 1
    timings: dict[str, OrderTiming] = {}
    for o in reversed(data.orders):  # newest last: it wins
        if o.order.schedule is not None:
            timings[o.drug_key] = OrderTiming(o.id, o.order.schedule)
    details = patient_details(patient, data.ehr.details, data.orders)
    kinds: tuple[MeasurementKind, ...] = ("weight", "height", "bsa", "lvef")
    return InfusionHistory(
        patient=patient,
        patient_name=details.name,
        patient_birth_date=details.birth_date,
        sessions=[SessionSummary.of(r, data.statuses[r.id]) for r in data.records],
        drugs=patient_history(sessions_per_drug, doses, rt.catalog, timings),
        measurements=[m for k in kinds if (m := latest(data.ehr.measurements, k)) is not None],
    )


@dataclass(frozen=True)
class _HistoryInputs:
    records: list[SessionRecord]
    bsa: dict[str, float | None]
    statuses: dict[str, list[str]]
    ehr: EhrHistory
    orders: list[OrderRecord]


def all_doses(
    records: list[SessionRecord], bsa: dict[str, float | None], ehr: EhrHistory
) -> dict[str, list[Dose]]:
    """Doses per drug: given in sessions charted here, and administered per the EHR (body
    surface area from the order, else from the EHR's measurements on the day)."""
    doses: dict[str, list[Dose]] = defaultdict(list)
    for r in records:
        if r.given_at is not None and r.dose is not None:
            dose = Dose(session_id=r.id, given_at=r.given_at, dose=r.dose, order_id=r.order_id)
            area = bsa.get(r.order_id) or body_surface_area(ehr.measurements, at=r.given_at)
            doses[r.drug_key].append(with_mg_per_m2(dose, area))
    for a in ehr.administrations:
        if not a.counts_as_dose or a.dose is None:
            continue
        dose = Dose(
            given_at=a.given_at,
            dose=a.dose,
            source="ehr",
            ehr_reference=a.reference,
            order_id=a.order_id,
        )
        area = body_surface_area(ehr.measurements, at=a.given_at)
        doses[a.drug_key].append(with_mg_per_m2(dose, area))
    return doses


@dataclass(frozen=True)
class ResourceSearch:
    """A FHIR search of finished sessions' resources, already parsed."""

    resource_type: str
    patient: str | None = None
    category: str | None = None
    dates: tuple[tuple[str, datetime], ...] = ()
    """(prefix, instant) bounds on the resource's effective time."""
    offset: int = 0
    count: int = 50


async def search(rt: Runtime, q: ResourceSearch, compartment: str | None = None) -> SearchPage:
    patient, possible = limit_to(patient_reference(q.patient) if q.patient else None, compartment)
    if not possible:
        return SearchPage(0, [])

    def load() -> SearchPage:
        with transaction(rt.engine) as db:
            page = search_resources(
                db,
                q.resource_type,
                patient=patient,
                category=q.category,
                after=list(q.dates),
                offset=q.offset,
                limit=q.count,
            )
        for r in page.resources:
            audit.note(q.resource_type, r.get("id"), _patient_of(r))
        return page

    return await run_sync(load)


async def read_resource(
    rt: Runtime,
    resource_type: str,
    resource_id: str,
    compartment: str | None = None,
    version_id: str | None = None,
) -> Json:
    """A finished session's resource (with ``meta``); each has one version, ``1``."""
    if version_id is not None and version_id != "1":
        raise NotFound(f"{resource_type}/{resource_id} has no version {version_id!r}", "vid")

    def load() -> Json | None:
        with transaction(rt.engine) as db:
            found = get_resource(db, resource_type, resource_id)
        if found is None or (compartment is not None and found[0] != compartment):
            return None
        audit.note(resource_type, resource_id, found[0])
        return found[1]

    resource = await run_sync(load)
    if resource is None:
        raise NotFound(f"{resource_type}/{resource_id} is not known")
    return resource


async def session_record(
    rt: Runtime, session_id: str, compartment: str | None = None
) -> list[Json]:
    """Every FHIR resource of a finished session (``NotFound`` while it is not finished)."""

    def load() -> list[Json]:
        with transaction(rt.engine) as db:
            found = get_infusion_session(db, session_id)
            if found is None or (compartment is not None and found.patient != compartment):
                raise NotFound(f"session {session_id} does not exist", "session_id")
            audit.note("Session", session_id, found.patient)
            return session_resources(db, session_id)

    resources = await run_sync(load)
    if not resources:
        raise NotFound(f"session {session_id} is not finished: it has no FHIR record yet")
    return resources


def _patient_of(resource: Json) -> str | None:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return str(ref["reference"])
    return None
