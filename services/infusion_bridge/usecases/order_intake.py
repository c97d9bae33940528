"""The steps every arriving order takes, however it came (REST, Bundle, rest-hook, sync):
fetch remote Medications, map the FHIR resource (pure), check it against the catalog's
rules, then write it in the caller's transaction, versioned."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from fhir_mappings.errors import MappingError
from fhir_mappings.medication_request import order_from_fhir, violations_to_issues

from ..domain.catalog import DrugCatalog
from ..domain.errors import DomainError, Invalid, Issue, PreconditionFailed, Unavailable
from ..domain.order_rules import check_order
from ..domain.orders import InfusionOrder
from ..ehr.client import EhrClient
from ..ehr.errors import EhrClientError, EhrError
from ..read_models import OrderRecord
from ..store.orders import ApplyResult, apply_order, find_by_identifier, get_order, lock_orders

Json = dict[str, Any]
Condition = tuple[str | None, str]
"""A conditional create's ``identifier=[system|]value`` as (system, value)."""


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
    """Map one MedicationRequest (its FHIR structure), then check it against the catalog's
    rules; raises ``MappingError`` naming the offending elements in FHIR terms."""
    if order_id is not None and resource.get("id") != order_id:
        resource = {**resource, "id": order_id}
    order = order_from_fhir(resource, catalog, medications=medications)
    violations = check_order(order, catalog)
    if violations:
        raise MappingError(violations_to_issues(violations))
    return PreparedOrder(order, resource)


def refusal(exc: MappingError, prefix: str | None = None) -> DomainError:
    """The domain error for a refused order: ``Invalid`` for broken FHIR structure, a
    business-rule error when valid FHIR breaks a rule. ``prefix`` re-roots the element
    paths (``Bundle.entry[3].resource``)."""
    issues = exc.issues
    if prefix is not None:
        issues = [
            Issue(
                i.code,
                i.diagnostics,
                tuple(prefix + e.removeprefix("MedicationRequest") for e in i.expression)
                or (prefix,),
                i.severity,
            )
            for i in issues
        ]
    kind = Invalid if any(i.code == "structure" for i in issues) else DomainError
    return kind.of(issues)


def claim_orders(
    db: Session,
    prepared: Iterable[PreparedOrder],
    *,
    conditions: Iterable[Condition] = (),
    order_ids: Iterable[str] = (),
) -> None:
    """First thing in a write transaction that stores orders: wait for, then hold, every
    order id and identifier value it reads before writing (see ``store.orders.lock_orders``),
    so that concurrent conditional creates and creates-by-PUT, in any process, neither
    duplicate an order nor fail on its primary key."""
    items = list(prepared)
    lock_orders(
        db,
        order_ids=[p.order.id for p in items] + list(order_ids),
        identifier_values=[i.value for p in items for i in p.order.identifiers]
        + [value for _, value in conditions],
    )


def store_order(db: Session, prepared: PreparedOrder, *, source: str, now: datetime) -> ApplyResult:
    """Write one prepared order, giving it a version when the sender did not.

    EHR deliveries carry ``meta.versionId`` and are applied in version order. Orders
    pushed without one are versioned here: one more than the cached version.
    """
    order, resource = prepared.order, prepared.resource
    if order.version_id is None or order.last_updated is None:
        current = get_order(db, order.id)
        version = order.version_id or ((current.version_id + 1) if current else 1)
        updated = order.last_updated or now
        order = order.model_copy(update={"version_id": version, "last_updated": updated})
        resource = copy.copy(resource)
        resource["meta"] = {
            **(resource.get("meta") or {}),
            "versionId": str(version),
            "lastUpdated": updated.isoformat(),
        }
    return apply_order(db, order, resource, source=source, now=now)


def parse_if_none_exist(header: str, element: str = "If-None-Exist") -> Condition:
    """``identifier=[system|]value`` (the only condition supported) -> (system, value)."""
    key, _, token = header.removeprefix("MedicationRequest?").partition("=")
    if key != "identifier" or not token:
        raise Invalid.because(
            "not-supported", "If-None-Exist supports only identifier=[system|]value", element
        )
    system, bar, value = token.partition("|")
    return (system, value) if bar else (None, system)


def find_existing(db: Session, condition: Condition) -> OrderRecord | None:
    """The order a conditional create matches: None, the one match, or an error if several."""
    matches = find_by_identifier(db, *condition)
    if len(matches) > 1:
        raise PreconditionFailed(f"{len(matches)} orders match identifier {condition[1]!r}")
    return matches[0] if matches else None


async def resolve_medications(ehr: EhrClient, resource: Json) -> dict[str, Json]:
    """Fetch remote ``Medication`` resources an order points at (unresolvable ones stay out)."""
    found: dict[str, Json] = {}
    for ref in remote_medication_refs(resource):
        head, _, rid = ref.rpartition("/")  # "Medication/1" or ".../fhir/Medication/1"
        try:
            found[ref] = await ehr.read(head.rsplit("/", 1)[-1], rid)
        except EhrClientError:
            continue  # the mapper reports the reference as not found
        except EhrError as exc:
            raise Unavailable(f"cannot resolve {ref} at the EHR now: {exc}") from exc
    return found


def remote_medication_refs(resource: Json) -> list[str]:
    """``Medication/...`` references that must be fetched from the EHR before mapping."""
    reference = resource.get("medicationReference")
    ref = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(ref, str) and ref and not ref.startswith("#"):
        return [ref]
    return []
