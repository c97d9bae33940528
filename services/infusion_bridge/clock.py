"""The one place the service reads the wall clock (domain and mappings take ``now``)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
