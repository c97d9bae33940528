"""order versions: the server's own versions apart from the EHR's, history, record times

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_version", sa.Integer(), nullable=True))
    # Until now the cached version was the EHR's: keep it as the source version that
    # orders the EHR's deliveries, and as the server's current version (clients' ETags).
    op.execute("UPDATE orders SET source_version = version_id")

    op.create_table(
        "order_versions",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("resource_json", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("order_id", "version_id"),
    )
    op.execute(
        "INSERT INTO order_versions (order_id, version_id, last_updated, deleted, resource_json)"
        " SELECT id, version_id, last_updated, deleted, resource_json FROM orders"
    )

    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_updated", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE fhir_resources SET last_updated ="
        " (SELECT updated_at FROM sessions WHERE sessions.id = fhir_resources.session_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.drop_column("last_updated")
    op.drop_table("order_versions")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("source_version")
