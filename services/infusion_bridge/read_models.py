"""Read models: what the store hands out and what ``api/`` and ``web/`` show.

Plain data built from the store's rows; no SQL, no HTTP. The JSON API serialises the
pydantic models below as they are; the web pages format the same objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from .domain.billing import SessionBilling
from .domain.catalog import DrugCatalog
from .domain.ehr_records import BodyMeasurement, PatientDetails
from .domain.history import DrugHistory
from .domain.orders import Drug, InfusionOrder, Quantity, Rate, Schedule
from .domain.session_events import Premedication, SessionEvent
from .domain.sessions import InfusionSession

Json = dict[str, Any]


def patient_details(
    patient: str, ehr: PatientDetails | None, orders: list[OrderRecord]
) -> PatientDetails:
    """Who the patient is: the Patient read from the EHR, else an order's ``subject.display``."""
    if ehr is not None and (ehr.name or ehr.birth_date):
        return ehr
    for order in orders:
        subject = order.resource.get("subject")
        display = subject.get("display") if isinstance(subject, dict) else None
        if isinstance(display, str) and display.strip():
            return PatientDetails(patient=patient, name=display.strip(), source="order")
    return PatientDetails(patient=patient)


@dataclass(frozen=True)
class OrderRecord:
    """One cached order: the columns the cache keeps, the order, the resource as received."""

    id: str
    version_id: int
    """This server's version (``meta.versionId`` as served, ``ETag``)."""
    last_updated: datetime
    source_version: int | None
    """The EHR's ``meta.versionId`` of the last version it sent on its own channels."""
    received_at: datetime
    source: str
    deleted: bool
    status: str
    role: str
    drug_key: str
    patient: str
    group_value: str | None
    order_json: Json
    resource: Json

    @cached_property
    def order(self) -> InfusionOrder:
        return InfusionOrder.model_validate(self.order_json)


@dataclass(frozen=True)
class OrderVersion:
    """One version of an order as this server served it (a delete is a version too)."""

    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    resource: Json


@dataclass(frozen=True)
class SessionRecord:
    """One infusion session's columns; ``infusion`` (the timeline) only when it was loaded."""

    id: str
    order_id: str
    patient: str
    drug_key: str
    state: str
    version: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    utc_offset_minutes: int | None
    given_at: datetime | None
    dose: Quantity | None
    infusion: InfusionSession | None = None


class LinkedOrder(BaseModel):
    id: str
    role: str
    drug: str
    status: str


class OrderView(BaseModel):
    id: str
    version: int
    last_updated: datetime
    source_version: int | None
    received_at: datetime
    source: str
    deleted: bool
    status: str
    intent: str
    role: str
    patient: str
    drug: Drug
    dose: Quantity
    body_surface_area_m2: float | None
    route: str | None
    rate: Rate | None
    schedule: Schedule | None
    dosage_text: str | None
    requester: str | None
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    group_identifier: str | None
    based_on: tuple[str, ...]
    linked_orders: list[LinkedOrder] = []

    @classmethod
    def of(cls, record: OrderRecord, linked: list[OrderRecord] | None = None) -> OrderView:
        order = record.order
        return cls(
            id=record.id,
            version=record.version_id,
            last_updated=record.last_updated,
            source_version=record.source_version,
            received_at=record.received_at,
            source=record.source,
            deleted=record.deleted,
            status=record.status,
            intent=order.intent.value,
            role=order.role,
            patient=order.patient,
            drug=order.drug,
            dose=order.dose,
            body_surface_area_m2=order.body_surface_area_m2,
            route=order.route_display or order.route_code,
            rate=order.rate,
            schedule=order.schedule,
            dosage_text=order.dosage_text,
            requester=order.requester,
            reasons=order.reasons,
            notes=order.notes,
            group_identifier=record.group_value,
            based_on=order.based_on,
            linked_orders=[
                LinkedOrder(
                    id=o.id, role=o.role, drug=str(o.order_json["drug"]["name"]), status=o.status
                )
                for o in linked or []
            ],
        )


class OrderPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[OrderView]


class TimelineItem(BaseModel):
    seq: int
    id: str
    recorded_at: datetime
    event: SessionEvent
    drug_name: str | None = None
    """The premedication's drug name (also when it was recorded by RxNorm code or NDC)."""


class DeliveryView(BaseModel):
    id: int
    session_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    outcome: dict[str, Any] | None
    response: dict[str, Any] | None
    created_at: datetime
    delivered_at: datetime | None
    failing_since: datetime | None = None
    """When its current run of transient failures began (None while it is not failing)."""


@dataclass(frozen=True)
class OutboxStats:
    """The outbox at a glance, for metrics: how many per status, how old the backlog is."""

    counts: dict[str, int]
    oldest_waiting_since: datetime | None
    """Creation time of the oldest delivery not yet delivered nor dead."""
    failing_long: int
    """Deliveries failing since before the warning age."""


class SessionView(BaseModel):
    """The full record of a session, as nurses and clinicians read it."""

    id: str
    order_id: str
    patient: str
    patient_name: str | None = None
    patient_birth_date: date | None = None
    drug: str
    drug_name: str | None = None
    state: str
    version: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    timeline: list[TimelineItem]
    deliveries: list[DeliveryView]
    order: OrderView | None = None
    vitals: list[TimelineItem] = []
    premedications: list[TimelineItem] = []
    reactions: list[TimelineItem] = []
    documented_by: list[str] = []
    administrations: list[dict[str, Any]] = []
    """The MedicationAdministrations sent to the EHR (FHIR JSON), once the session is finished."""
    billing: SessionBilling | None = None
    """Exact infusion start and stop, minutes, HCPCS and administration units (finished)."""

    @classmethod
    def of(
        cls,
        record: SessionRecord,
        deliveries: list[DeliveryView],
        *,
        order: OrderRecord | None = None,
        administrations: list[Json] | None = None,
        catalog: DrugCatalog | None = None,
        patient: PatientDetails | None = None,
        billing: SessionBilling | None = None,
        known: Sequence[TimelineItem] = (),
    ) -> SessionView:
        """``known``: timeline items of an earlier view of the session, reused for the
        events they show (events are only appended, never changed)."""
        assert record.infusion is not None, "the session's timeline must be loaded"
        events = record.infusion.events
        reuse = len(known) if known and len(known) <= len(events) else 0
        if reuse and known[reuse - 1].id != events[reuse - 1].id:
            reuse = 0
        # built from events the domain already validated (no second validation: with a
        # long timeline it cost more than recording the event)
        timeline = [*known[:reuse]] + [
            TimelineItem.model_construct(
                seq=e.seq,
                id=e.id,
                recorded_at=e.recorded_at,
                event=e.event,
                drug_name=_drug_name(catalog, e.event),
            )
            for e in events[reuse:]
        ]
        entry = catalog.by_key(record.drug_key) if catalog is not None else None

        def of(*kinds: str) -> list[TimelineItem]:
            return [t for t in timeline if t.event.type in kinds]

        return cls(
            id=record.id,
            order_id=record.order_id,
            patient=record.patient,
            patient_name=patient.name if patient is not None else None,
            patient_birth_date=patient.birth_date if patient is not None else None,
            drug=record.drug_key,
            drug_name=entry.name if entry is not None else None,
            state=record.state,
            version=record.version,
            created_at=record.created_at,
            started_at=record.started_at,
            ended_at=record.ended_at,
            timeline=timeline,
            deliveries=deliveries,
            order=OrderView.of(order) if order is not None else None,
            vitals=of("vitals"),
            premedications=of("premedication"),
            reactions=of("reaction"),
            documented_by=sorted({t.event.by for t in timeline if t.event.by}),
            administrations=administrations or [],
            billing=billing,
        )


def _drug_name(catalog: DrugCatalog | None, event: Any) -> str | None:
    """A premedication's drug name, however it was recorded (catalog key, RxNorm, NDC)."""
    if catalog is None or not isinstance(event, Premedication):
        return None
    entry = catalog.by_code(event.drug)
    return entry.name if entry is not None else None


class SessionSummary(BaseModel):
    id: str
    order_id: str
    patient: str
    drug: str
    state: str
    started_at: datetime | None
    ended_at: datetime | None
    delivery: str | None = None
    """Status of the latest write-back to the EHR (none for open or cancelled sessions)."""

    @classmethod
    def of(cls, record: SessionRecord, statuses: list[str]) -> SessionSummary:
        return cls(
            id=record.id,
            order_id=record.order_id,
            patient=record.patient,
            drug=record.drug_key,
            state=record.state,
            started_at=record.started_at,
            ended_at=record.ended_at,
            delivery=statuses[-1] if statuses else None,
        )


class SessionPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[SessionSummary]


@dataclass(frozen=True)
class SessionListing:
    """One page of sessions with each one's delivery statuses (oldest first)."""

    total: int
    records: list[SessionRecord]
    statuses: dict[str, list[str]]


class InfusionHistory(BaseModel):
    patient: str
    patient_name: str | None = None
    patient_birth_date: date | None = None
    sessions: list[SessionSummary]
    drugs: list[DrugHistory]
    measurements: list[BodyMeasurement] = []
    """The latest body weight, height, body surface area and LVEF read from the EHR."""


class EhrPullView(BaseModel):
    """What one pull of a patient's history from the EHR brought back."""

    patient: str
    administrations: int
    """Earlier MedicationAdministrations of catalog drugs (not the ones written back from here)."""
    measurements: int
    """Body weight, height, body surface area and LVEF Observations."""
    patient_found: bool
    skipped: int
    """Resources that could not be used (not R4, no date or value, not a catalog drug)."""


@dataclass(frozen=True)
class SearchPage:
    """One page of a FHIR search: the total and the resources."""

    total: int
    resources: list[Json]
