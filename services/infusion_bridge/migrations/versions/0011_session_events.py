"""session events as append-only rows

Each recorded event of a session becomes one row of ``session_events`` (its place in the
timeline and the event as JSON), instead of living in ``sessions.session_json``, which
every new event used to rewrite whole. ``session_json`` keeps the session's other fields.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_sessions = sa.table("sessions", sa.column("id", sa.String), sa.column("session_json", sa.JSON))
_events = sa.table(
    "session_events",
    sa.column("session_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("event_json", sa.JSON),
)


def upgrade() -> None:
    op.create_table(
        "session_events",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_json", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"]),
        sa.PrimaryKeyConstraint("session_id", "seq"),
    )
    bind = op.get_bind()
    for session_id, document in bind.execute(sa.select(_sessions.c.id, _sessions.c.session_json)):
        events: list[dict[str, Any]] = list(document.pop("events", None) or [])
        rows = [
            {"session_id": session_id, "seq": event.get("seq", n), "event_json": event}
            for n, event in enumerate(events, start=1)
        ]
        if rows:
            bind.execute(_events.insert(), rows)
        bind.execute(
            _sessions.update().where(_sessions.c.id == session_id).values(session_json=document)
        )


def downgrade() -> None:
    bind = op.get_bind()
    timelines: dict[str, list[dict[str, Any]]] = {}
    for session_id, event in bind.execute(
        sa.select(_events.c.session_id, _events.c.event_json).order_by(
            _events.c.session_id, _events.c.seq
        )
    ):
        timelines.setdefault(session_id, []).append(event)
    for session_id, document in bind.execute(sa.select(_sessions.c.id, _sessions.c.session_json)):
        document["events"] = timelines.get(session_id, [])
        bind.execute(
            _sessions.update().where(_sessions.c.id == session_id).values(session_json=document)
        )
    op.drop_table("session_events")
