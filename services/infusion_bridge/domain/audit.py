"""What an audit record says: who did what to which patient's data, when, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

INTERACTION_ACTION = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "search": "R",
    "update": "U",
    "delete": "D",
    "execute": "E",
}
"""FHIR restful-interaction -> audit-event-action."""


def outcome_of(status: int | None) -> str:
    """FHIR audit-event-outcome for an HTTP status (None: written with the data, so a
    success): 0 success, 4 refused, 8 failed."""
    if status is None or status < 400:
        return "0"
    return "8" if status >= 500 else "4"


@dataclass(frozen=True)
class AuditRecord:
    id: int
    recorded: datetime
    action: str
    interaction: str
    outcome: str
    status: int | None
    subject: str | None
    who: str | None
    client_id: str | None
    roles: tuple[str, ...]
    resource_type: str | None
    patient: str | None
    entities: tuple[dict[str, Any], ...]
    method: str
    route: str
    request_id: str
    source: str | None
    reason: str | None
