"""The write-back Bundle of a finished session, assembled from the store (pure mapping inside)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from fhir_mappings.writeback_bundle import writeback_bundle

from ..domain.catalog import DrugCatalog
from ..domain.sessions import InfusionSession
from ..store.order_queries import linked_orders
from ..store.orders import get_order


def build_writeback(
    db: Session, infusion: InfusionSession, *, catalog: DrugCatalog, identifier_system: str
) -> dict[str, Any]:
    """The transaction Bundle for ``infusion``, linking premeds to their cached orders."""
    order = get_order(db, infusion.order_id)
    if order is None:
        raise LookupError(f"order {infusion.order_id} of session {infusion.id} is gone")
    premeds = {
        linked.drug_key: linked.id
        for linked in linked_orders(db, order)
        if linked.role == "premedication" and not linked.deleted
    }
    return writeback_bundle(
        infusion,
        order.order,
        catalog,
        identifier_system=identifier_system,
        premed_orders=premeds,
    )
