"""Finding orders the FHIR way: MedicationRequest search and the criteria of a conditional
create (``If-None-Exist``, ``Bundle.entry.request.ifNoneExist``), which share one reading."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from anyio.to_thread import run_sync
from sqlmodel import Session

from fhir_mappings import search_values

from ..domain.errors import Invalid, PreconditionFailed
from ..read_models import OrderRecord
from ..runtime import Runtime
from ..store import audit
from ..store import order_queries as queries
from ..store.db import transaction

ORDER_SEARCH_PARAMS = {
    # name -> FHIR search parameter type
    "_id": "token",
    "identifier": "token",
    "patient": "reference",
    "subject": "reference",
    "status": "token",
}
"""MedicationRequest search parameters this service supports (the CapabilityStatement's)."""


@dataclass(frozen=True)
class OrderCriteria:
    """What an order must match: each field a list of alternatives (OR), fields ANDed."""

    ids: tuple[str, ...] = ()
    identifiers: tuple[tuple[str | None, str | None], ...] = ()
    statuses: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.ids or self.identifiers or self.statuses or self.patients)


def read_order_criteria(
    pairs: Sequence[tuple[str, str]], *, local_bases: tuple[str, ...], element: str | None = None
) -> OrderCriteria:
    """Search parameters (already URL-decoded) -> criteria; ``Invalid`` naming the parameter
    (or ``element``, e.g. ``If-None-Exist``) for one not supported or a value not readable."""
    found: dict[str, list[set[str]]] = {}
    identifiers: list[tuple[str | None, str | None]] = []
    for raw_name, raw in pairs:
        name, _, modifier = raw_name.partition(":")
        where = element or raw_name
        if name not in ORDER_SEARCH_PARAMS or (
            modifier and not (name in ("patient", "subject") and modifier == "Patient")
        ):
            raise Invalid.because(
                "not-supported",
                f"search parameter {raw_name!r} is not supported on MedicationRequest; "
                f"supported: {', '.join(ORDER_SEARCH_PARAMS)}",
                where,
            )
        try:
            values = search_values.split_values(raw)
            if name == "identifier":
                if identifiers:
                    raise ValueError("identifier may be given once (use commas for OR)")
                identifiers = [search_values.token(v) for v in values]
                continue
            if name in ("patient", "subject"):
                key, items = (
                    "patient",
                    [search_values.reference(v, "Patient", local_bases) for v in values],
                )
            elif name == "status":
                key, items = "status", [search_values.token(v)[1] or "" for v in values]
            else:
                key, items = "_id", values
        except ValueError as exc:
            raise Invalid(f"{raw_name}: {exc}", where) from exc
        found.setdefault(key, []).append(set(items))
    return OrderCriteria(
        ids=_all_of(found.get("_id")),
        identifiers=tuple(identifiers),
        statuses=_all_of(found.get("status")),
        patients=_all_of(found.get("patient")),
    )


def _all_of(groups: list[set[str]] | None) -> tuple[str, ...]:
    """Repeated parameters are ANDed: the values every repetition allows."""
    if not groups:
        return ()
    allowed = set.intersection(*groups)
    return tuple(sorted(allowed)) or ("\x00",)  # nothing can match


def read_if_none_exist(
    header: str, *, local_bases: tuple[str, ...], element: str = "If-None-Exist"
) -> OrderCriteria:
    """A conditional create's condition: ``[[base/]MedicationRequest?]name=value&...``,
    URL-encoded as clients send it (the HAPI client adds its ``_format``, ignored here)."""
    head, question, query = header.strip().partition("?")
    if not question:
        head, query = "", header.strip()
    elif head.rstrip("/").rsplit("/", 1)[-1] not in ("MedicationRequest", ""):
        raise Invalid(f"the condition must be on MedicationRequest, not {head!r}", element)
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "_format"]
    criteria = read_order_criteria(pairs, local_bases=local_bases, element=element)
    if criteria.empty:
        raise Invalid.because("required", "the condition has no search parameter", element)
    return criteria


def find_existing(db: Session, criteria: OrderCriteria) -> OrderRecord | None:
    """The order a conditional create matches: None, the one match, or 412 if several."""
    total, matches = _query(db, criteria, offset=0, limit=2)
    if total > 1:
        raise PreconditionFailed(f"{total} orders match the condition; it must match one")
    return matches[0] if matches else None


async def search_orders(
    rt: Runtime,
    criteria: OrderCriteria,
    *,
    offset: int,
    count: int,
    compartment: str | None = None,
) -> tuple[int, list[OrderRecord]]:
    """Orders matching the criteria (deleted ones never), newest first, and their total;
    only the compartment's patient's, if the caller is limited to one."""
    if compartment is not None:
        if criteria.patients and compartment not in criteria.patients:
            return 0, []
        criteria = replace(criteria, patients=(compartment,))

    def load() -> tuple[int, list[OrderRecord]]:
        with transaction(rt.engine) as db:
            total, records = _query(db, criteria, offset=offset, limit=count)
        for r in records:
            audit.note("MedicationRequest", r.id, r.patient)
        return total, records

    return await run_sync(load)


def _query(
    db: Session, c: OrderCriteria, *, offset: int, limit: int
) -> tuple[int, list[OrderRecord]]:
    return queries.search_orders(
        db,
        ids=c.ids,
        identifiers=c.identifiers,
        statuses=c.statuses,
        patients=c.patients,
        offset=offset,
        limit=limit,
    )
