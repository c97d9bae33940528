"""The steps every arriving order takes, however it came (REST, Bundle, rest-hook, sync):
fetch remote Medications, map the FHIR resource (pure), check it against the catalog's
rules, then write it in the caller's transaction, versioned.

Versions: this server numbers every order's versions itself (``meta.versionId``,
``ETag``). Where an order came from decides what the body's ``meta`` means:

- on the EHR's own channels (:data:`EHR_SOURCES`: rest-hook deliveries under
  ``/hooks/ehr``, behind the hook secret, and the pull sync) ``meta.versionId`` is the
  EHR's version; it is kept as the *source version* and orders the deliveries (the same
  again is a no-op, an older one is ignored), since those arrive repeated and out of order;
- on the FHIR base (``/fhir``, single requests and Bundles) the body's ``meta.versionId``
  and ``lastUpdated`` are ignored (R4 http.html#update): any client, the EHR pushing
  included, updates the current version, and ``If-Match`` guards against lost updates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from fhir_mappings.errors import MappingError
from fhir_mappings.medication_request import order_from_fhir, violations_to_issues
from fhir_mappings.references import unresolved_references

from ..domain.catalog import DrugCatalog
from ..domain.errors import DomainError, Invalid, Issue, PreconditionFailed, Unavailable
from ..domain.order_rules import check_order
from ..domain.orders import InfusionOrder
from ..ehr.client import EhrClient
from ..ehr.errors import EhrClientError, EhrError
from ..store.orders import ApplyResult, apply_order, get_order, lock_orders
from .order_search import OrderCriteria

Json = dict[str, Any]
EHR_SOURCES = frozenset({"subscription", "sync"})
"""Sources whose ``meta.versionId`` is the EHR's own version (see the module docstring)."""


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
    ehr_sourced: bool = False,
) -> PreparedOrder:
    """Map one MedicationRequest (its FHIR structure), then check it against the catalog's
    rules; raises ``MappingError`` naming the offending elements in FHIR terms. Unless the
    order is ``ehr_sourced``, the body's ``meta.versionId``/``lastUpdated`` are dropped."""
    if order_id is not None and resource.get("id") != order_id:
        resource = {**resource, "id": order_id}
    if not ehr_sourced and isinstance(resource.get("meta"), dict):
        resource = without_server_meta(resource)
    unresolved = unresolved_references(resource)
    if unresolved:
        raise MappingError(unresolved)
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
    conditions: Iterable[OrderCriteria] = (),
    order_ids: Iterable[str] = (),
) -> None:
    """First thing in a write transaction that stores orders: wait for, then hold, what
    the transaction reads before it writes (see ``store.orders.lock_orders``), so that
    concurrent conditional creates and creates-by-PUT, in any process, neither duplicate
    an order nor fail on its primary key.

    That is each stored order's id (pass only orders whose id may already exist: a create
    under a fresh id of this server's reads nothing) and each condition's ``_id`` and
    ``identifier`` values. The identifiers an order *carries* are not locked: a write that
    does not search by identifier can be ordered after any conditional create that runs
    beside it, so a conditional create has nothing to wait for (it waits only for other
    conditional creates on the same values, which search). A condition on
    ``patient``/``status`` alone names no key: it excludes every other order write while
    its transaction runs (rare, and correct).
    """
    items = list(prepared)
    criteria = list(conditions)
    lock_orders(
        db,
        order_ids=[p.order.id for p in items]
        + list(order_ids)
        + [i for c in criteria for i in c.ids],
        identifier_values=[value for c in criteria for value in _identifier_values(c)],
        everything=any(not c.ids and not _identifier_values(c) for c in criteria),
    )


def _identifier_values(criteria: OrderCriteria) -> list[str]:
    return [value for _, value in criteria.identifiers if value is not None]


def without_server_meta(resource: Json) -> Json:
    """The resource without ``meta.versionId``/``lastUpdated`` (the server sets those)."""
    meta = {k: v for k, v in resource["meta"].items() if k not in ("versionId", "lastUpdated")}
    body = {k: v for k, v in resource.items() if k != "meta"}
    return {**body, "meta": meta} if meta else body


def store_order(
    db: Session,
    prepared: PreparedOrder,
    *,
    source: str,
    now: datetime,
    if_match: int | None = None,
    new: bool = False,
) -> ApplyResult:
    """Write one prepared order as a new version (the module docstring says how versions
    work); ``if_match`` must be the current version, else ``PreconditionFailed``.
    ``new``: the order's id was just made by this server (``POST``), nothing to read."""
    if if_match is not None:
        check_version(db, prepared.order.id, if_match)
    source_version = prepared.order.version_id if source in EHR_SOURCES else None
    return apply_order(
        db,
        prepared.order,
        prepared.resource,
        source=source,
        now=now,
        source_version=source_version,
        new=new,
    )


def check_version(db: Session, order_id: str, if_match: int) -> None:
    """``If-Match``: the order's current version must be ``if_match`` (R4 412 otherwise)."""
    current = get_order(db, order_id)
    if current is None or current.deleted:
        raise PreconditionFailed.because(
            "conflict", f"If-Match: MedicationRequest/{order_id} has no current version", "If-Match"
        )
    if current.version_id != if_match:
        raise PreconditionFailed.because(
            "conflict",
            f"If-Match: version {if_match} is not the current version {current.version_id}",
            "If-Match",
        )


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
