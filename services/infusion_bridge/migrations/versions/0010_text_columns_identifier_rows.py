"""text columns for what FHIR allows; one identifier row per order and position

Identifier system/value, groupIdentifier and Patient references become text (they were
varchar(128/256), which PostgreSQL enforced with a 500). Lookups by identifier value and
by groupIdentifier go through a SHA-256 key column, since a B-tree entry must stay under
~2.7 KB. ``order_identifiers`` keeps every identifier of every order (its key was
system+value, so an identifier carried by a second order was silently dropped).
The patient columns of ``ehr_records`` (0007) and ``audit_events`` (0005) become text too:
a Patient reference up to 1,024 characters is accepted, and its audit record must fit.
On SQLite, changing a column type rebuilds the table, which drops its triggers: the
append-only guard of ``audit_events`` is created again (the rebuild copies the rows with
INSERT and removes the old table with DROP TABLE, neither of which those triggers refuse).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SQLITE_AUDIT_GUARD = [
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
]
"""The same statements as migration 0005."""


def _patient_columns(old: sa.types.TypeEngine[str], new: sa.types.TypeEngine[str]) -> None:
    for table, nullable in (("ehr_records", False), ("audit_events", True)):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "patient", existing_type=old, type_=new, existing_nullable=nullable
            )
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_AUDIT_GUARD:
            op.execute(statement)


def _key(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column(
            "patient", existing_type=sa.String(length=128), type_=sa.Text(), existing_nullable=False
        )
        batch_op.alter_column(
            "group_value",
            existing_type=sa.String(length=256),
            type_=sa.Text(),
            existing_nullable=True,
        )
        batch_op.add_column(sa.Column("group_key", sa.String(length=64), nullable=True))
        batch_op.drop_index("ix_orders_group_value")
        batch_op.create_index(batch_op.f("ix_orders_group_key"), ["group_key"], unique=False)
    orders = sa.table("orders", sa.column("id"), sa.column("group_value"), sa.column("group_key"))
    for order_id, group in bind.execute(
        sa.select(orders.c.id, orders.c.group_value).where(orders.c.group_value.is_not(None))
    ).all():
        bind.execute(orders.update().where(orders.c.id == order_id).values(group_key=_key(group)))

    old = sa.table(
        "order_identifiers", sa.column("system"), sa.column("value"), sa.column("order_id")
    )
    rows = bind.execute(
        sa.select(old.c.order_id, old.c.system, old.c.value).order_by(
            old.c.order_id, old.c.system, old.c.value
        )
    ).all()
    with op.batch_alter_table("order_identifiers", schema=None) as batch_op:
        batch_op.drop_index("ix_order_identifiers_order_id")
    op.drop_table("order_identifiers")
    new = op.create_table(
        "order_identifiers",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("order_id", "position"),
    )
    with op.batch_alter_table("order_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_identifiers_value_key"), ["value_key"], unique=False
        )
    positions: dict[str, int] = {}
    copied = []
    for order_id, system, value in rows:
        position = positions.get(order_id, 0)
        positions[order_id] = position + 1
        copied.append(
            {
                "order_id": order_id,
                "position": position,
                "system": system,
                "value": value,
                "value_key": _key(value),
            }
        )
    if copied:
        op.bulk_insert(new, copied)

    for table in ("sessions", "fhir_resources"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "patient",
                existing_type=sa.String(length=128),
                type_=sa.Text(),
                existing_nullable=False,
            )
    _patient_columns(sa.String(length=128), sa.Text())


def downgrade() -> None:
    _patient_columns(sa.Text(), sa.String(length=128))
    for table in ("sessions", "fhir_resources"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "patient",
                existing_type=sa.Text(),
                type_=sa.String(length=128),
                existing_nullable=False,
            )
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT system, value, min(order_id) FROM order_identifiers GROUP BY system, value")
    ).all()
    op.drop_table("order_identifiers")
    old = op.create_table(
        "order_identifiers",
        sa.Column("system", sa.String(length=256), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("system", "value"),
    )
    with op.batch_alter_table("order_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_identifiers_order_id"), ["order_id"], unique=False
        )
    if rows:
        op.bulk_insert(old, [{"system": s, "value": v, "order_id": o} for s, v, o in rows])
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_group_key"))
        batch_op.create_index("ix_orders_group_value", ["group_value"], unique=False)
        batch_op.drop_column("group_key")
        batch_op.alter_column(
            "group_value",
            existing_type=sa.Text(),
            type_=sa.String(length=256),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "patient", existing_type=sa.Text(), type_=sa.String(length=128), existing_nullable=False
        )
