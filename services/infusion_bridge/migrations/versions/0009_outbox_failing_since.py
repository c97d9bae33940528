"""outbox: when a delivery started failing (retry horizon, failing-long alerts)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
    # Deliveries already waiting on a retry: their failures began no later than their creation
    # time as far as we can tell, so the horizon counts from there.
    op.execute(
        "UPDATE outbox SET failing_since = created_at "
        "WHERE status IN ('pending', 'delivering') AND last_error IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("failing_since")
