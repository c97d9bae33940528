"""Order intake: FHIR MedicationRequest in, cached InfusionOrder out.

One path for every way an order arrives (REST create/update, Bundle entries, rest-hook
deliveries, pull sync): map (pure, may refuse), then write in the caller's transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from fhir_mappings.medication_request import order_from_fhir

from .domain.catalog import DrugCatalog
from .domain.orders import InfusionOrder
from .store.orders import ApplyResult, apply_order, get_order

Json = dict[str, Any]


@dataclass(frozen=True)
class PreparedOrder:
    """A mapped order and the resource exactly as received (plus the id it is stored under)."""

    order: InfusionOrder
    resource: Json


def prepare_order(
    resource: Json,
    catalog: DrugCatalog,
    *,
    order_id: str | None = None,
    medications: Mapping[str, Json] | None = None,
) -> PreparedOrder:
    """Map one MedicationRequest; raises ``MappingError`` naming the offending elements."""
    if order_id is not None and resource.get("id") != order_id:
        resource = {**resource, "id": order_id}
    order = order_from_fhir(resource, catalog, medications=medications)
    return PreparedOrder(order, resource)


def store_order(
    session: Session, prepared: PreparedOrder, *, source: str, now: datetime
) -> ApplyResult:
    """Write one prepared order, giving it a version when the sender did not.

    EHR deliveries carry ``meta.versionId`` and are applied in version order. Orders
    pushed without one are versioned here: one more than the cached version.
    """
    order, resource = prepared.order, prepared.resource
    current = get_order(session, order.id)
    if order.version_id is None or order.last_updated is None:
        version = order.version_id or ((current.version_id + 1) if current else 1)
        updated = order.last_updated or now
        order = order.model_copy(update={"version_id": version, "last_updated": updated})
        resource = copy.copy(resource)
        resource["meta"] = {
            **(resource.get("meta") or {}),
            "versionId": str(version),
            "lastUpdated": updated.isoformat(),
        }
    return apply_order(session, order, resource, source=source, now=now, current=current)


def remote_medication_refs(resource: Json) -> list[str]:
    """``Medication/...`` references that must be fetched from the EHR before mapping."""
    reference = resource.get("medicationReference")
    ref = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(ref, str) and ref and not ref.startswith("#"):
        return [ref]
    return []
