"""SQLModel tables of the local store. Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel


class OrderRow(SQLModel, table=True):
    """One cached MedicationRequest, latest version; deletes are flagged, not removed.

    ``version_id``/``last_updated`` are this server's own (``meta`` as served, ``ETag``);
    ``source_version`` is the EHR's ``meta.versionId`` of the last version it sent on one of
    its own channels (rest-hook, pull sync), which orders its deliveries.
    """

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_received", "received_at", "id"),
        Index("ix_orders_patient_received", "patient", "received_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    version_id: int = Field(default=1)
    last_updated: datetime
    source_version: int | None = None
    status: str = Field(index=True, max_length=32)
    patient: str = Field(sa_column=Column(Text, nullable=False))
    """The Patient reference as sent (the mapper refuses one over 1,024 characters, so the
    B-tree index on it stays within PostgreSQL's index row limit)."""
    drug_key: str = Field(index=True, max_length=64)
    rxnorm: str = Field(index=True, max_length=32)
    role: str = Field(max_length=16)
    group_value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """``system|value`` of the groupIdentifier: any length FHIR allows, so not indexed ..."""
    group_key: str | None = Field(default=None, index=True, max_length=64)
    """... but its :func:`~.keys.text_key` is (a B-tree entry must stay under ~2.7 KB)."""
    deleted: bool = Field(default=False)
    source: str = Field(max_length=16)
    received_at: datetime
    order_json: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    resource_json: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class OrderVersionRow(SQLModel, table=True):
    """Every version of a cached order as served (vread, ``_history``); a delete is a version."""

    __tablename__ = "order_versions"

    order_id: str = Field(primary_key=True, foreign_key="orders.id", max_length=64)
    version_id: int = Field(primary_key=True)
    last_updated: datetime
    deleted: bool = Field(default=False)
    resource_json: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class OrderLinkRow(SQLModel, table=True):
    """``basedOn`` links between orders (premedication -> infusion order)."""

    __tablename__ = "order_links"

    order_id: str = Field(primary_key=True, foreign_key="orders.id", max_length=64)
    target_id: str = Field(primary_key=True, index=True, max_length=64)


class OrderIdentifierRow(SQLModel, table=True):
    """Every business identifier of every cached order, for conditional create
    (If-None-Exist). Two orders may share one: a condition then matches both (412).

    ``system`` and ``value`` hold any length FHIR allows (text); lookups go through
    ``value_key`` (:func:`~.keys.text_key` of the value), which keeps the index bounded.
    """

    __tablename__ = "order_identifiers"

    order_id: str = Field(primary_key=True, foreign_key="orders.id", max_length=64)
    position: int = Field(primary_key=True)
    """The identifier's index in ``MedicationRequest.identifier``."""
    system: str = Field(sa_column=Column(Text, nullable=False))
    value: str = Field(sa_column=Column(Text, nullable=False))
    value_key: str = Field(index=True, max_length=64)


class SyncCheckpointRow(SQLModel, table=True):
    """How far an incremental pull from the EHR has got (``meta.lastUpdated`` of the EHR)."""

    __tablename__ = "sync_checkpoints"

    name: str = Field(primary_key=True, max_length=64)
    last_updated: str
    updated_at: datetime


class SessionRow(SQLModel, table=True):
    """One infusion session: summary columns, and in ``session_json`` the domain model's
    fields but its events (``state`` there is the state at creation; the column is current).
    The events are rows of ``session_events``."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_patient_started", "patient", "started_at"),)

    id: str = Field(primary_key=True, max_length=64)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=64)
    patient: str = Field(sa_column=Column(Text, nullable=False))
    drug_key: str = Field(index=True, max_length=64)
    state: str = Field(index=True, max_length=32)
    version: int = Field(default=1)
    """Optimistic lock: every write bumps it; a concurrent writer gets a conflict."""
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = Field(default=None, index=True)
    utc_offset_minutes: int | None = None
    """The chair-side clock's UTC offset (from the first event), for showing local times."""
    ended_at: datetime | None = None
    given_at: datetime | None = None
    """When the drug was given (infusion start), for sessions that gave a dose."""
    dose_value: float | None = None
    dose_unit: str | None = Field(default=None, max_length=16)
    session_json: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class SessionEventRow(SQLModel, table=True):
    """One recorded event of a session (``RecordedEvent`` as JSON): append-only, written
    once when the nurse records it and never rewritten, so that recording event 60 writes
    as much as recording event 5. The key (session, seq) refuses a second event at the
    same place in the timeline."""

    __tablename__ = "session_events"

    session_id: str = Field(primary_key=True, foreign_key="sessions.id", max_length=64)
    seq: int = Field(primary_key=True)
    event_json: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class OutboxRow(SQLModel, table=True):
    """A pending write to the EHR, committed in the same transaction as the session change."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(foreign_key="sessions.id", index=True, max_length=64)
    status: str = Field(max_length=16)
    """pending | delivering | delivered | dead"""
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    last_error: str | None = None
    outcome: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """The EHR's OperationOutcome when it refused the Bundle."""
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """The transaction Bundle to send, built once when the session completed."""
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """Where each resource landed at the EHR (locations from the transaction-response)."""
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None
    failing_since: datetime | None = None
    """When the current run of transient failures began (the retry horizon counts from it)."""


class FhirResourceRow(SQLModel, table=True):
    """A resource of a finished session as this service serves it on ``/fhir`` (searchable)."""

    __tablename__ = "fhir_resources"
    __table_args__ = (Index("ix_fhir_resources_search", "resource_type", "patient", "effective"),)

    id: str = Field(primary_key=True, max_length=64)
    resource_type: str = Field(max_length=32)
    session_id: str = Field(foreign_key="sessions.id", index=True, max_length=64)
    patient: str = Field(sa_column=Column(Text, nullable=False))
    effective: datetime | None = None
    category: str | None = Field(default=None, max_length=64)
    last_updated: datetime | None = None
    """When it was stored (its only version, ``1``); None for rows older than the column."""
    resource_json: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class EhrRecordRow(SQLModel, table=True):
    """A resource read from the EHR about a patient (an earlier administration, a body
    measurement, the Patient), kept with its EHR id and version; ``record_json`` is the domain
    record (``domain/ehr_records.py``)."""

    __tablename__ = "ehr_records"
    __table_args__ = (Index("ix_ehr_records_patient_kind", "patient", "kind"),)

    key: str = Field(primary_key=True, max_length=128)
    """``<resourceType>/<id>`` at the EHR."""
    patient: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(max_length=16)
    """administration | weight | height | bsa | lvef | patient"""
    version_id: str | None = Field(default=None, max_length=64)
    effective: datetime | None = None
    fetched_at: datetime
    record_json: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class AuditRow(SQLModel, table=True):
    """One access to patient data (or an attempt): append-only, never updated or deleted.

    Written in the same transaction as the data a request writes; the database refuses
    UPDATE and DELETE on this table (triggers, migration 0005).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_patient_recorded", "patient", "recorded"),
        Index("ix_audit_subject_recorded", "subject", "recorded"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recorded: datetime = Field(index=True)
    action: str = Field(max_length=1)
    """C, R, U, D or E (FHIR audit-event-action)."""
    interaction: str = Field(max_length=16)
    """read, search, create, update, delete, execute (FHIR restful-interaction)."""
    outcome: str = Field(max_length=2)
    """0 success, 4 minor failure (refused), 8 serious failure (server error)."""
    status: int | None = None
    """The HTTP status answered; None when written with the data it describes (success)."""
    subject: str | None = Field(default=None, max_length=256)
    who: str | None = Field(default=None, max_length=256)
    client_id: str | None = Field(default=None, max_length=256)
    roles: str = ""
    resource_type: str | None = Field(default=None, max_length=64)
    patient: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    entities: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    method: str = Field(max_length=8)
    route: str = Field(max_length=256)
    request_id: str = Field(max_length=64)
    source: str | None = Field(default=None, max_length=64)
    reason: str | None = None
    """Why it was refused (a missing scope or role, a bad token), never PHI."""


class WebSessionRow(SQLModel, table=True):
    """A browser's sign-in to the clinician pages (server-side; the cookie holds only a
    random token whose SHA-256 is the key). Pending until the identity provider answers."""

    __tablename__ = "web_sessions"

    id: str = Field(primary_key=True, max_length=64)
    """SHA-256 (hex) of the cookie's token: a stolen database does not yield live cookies."""
    created_at: datetime
    expires_at: datetime = Field(index=True)
    state: str = Field(max_length=16)
    """pending | active | ended"""
    oauth_state: str | None = Field(default=None, max_length=128)
    code_verifier: str | None = Field(default=None, max_length=128)
    next_url: str = Field(default="/ui/sessions", max_length=512)
    claims: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """The verified access token's claims (who, roles, scopes) once signed in."""
    id_token: str | None = None
    """The provider's ID token, sent back as the hint when signing out there too."""
    csrf_token: str = Field(max_length=64)
