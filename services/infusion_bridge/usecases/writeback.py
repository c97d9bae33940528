"""Assemble a finished session's write-back Bundle from the store (pure mapping inside)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from fhir_mappings.session_bundle import session_to_bundle

from ..domain.catalog import DrugCatalog
from ..domain.orders import InfusionOrder
from ..domain.sessions import InfusionSession
from ..store.orders import get_order, linked_orders


def build_session_bundle(
    db: Session, infusion: InfusionSession, *, catalog: DrugCatalog, identifier_system: str
) -> dict[str, Any]:
    """The transaction Bundle for ``infusion``, linking premeds to their cached orders."""
    orow = get_order(db, infusion.order_id)
    if orow is None:
        raise LookupError(f"order {infusion.order_id} of session {infusion.id} is gone")
    premeds = {
        linked.drug_key: linked.id
        for linked in linked_orders(db, orow)
        if linked.role == "premedication" and not linked.deleted
    }
    return session_to_bundle(
        infusion,
        InfusionOrder.model_validate(orow.order_json),
        catalog,
        identifier_system=identifier_system,
        premed_orders=premeds,
    )
