"""SQLModel tables of the local store. Schema changes go through Alembic migrations."""

from __future__ import annotations
