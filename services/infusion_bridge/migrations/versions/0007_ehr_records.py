"""ehr records: administrations, body measurements and patients read from the EHR

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ehr_records",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("patient", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=True),
        sa.Column("effective", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_json", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("ehr_records", schema=None) as batch_op:
        batch_op.create_index("ix_ehr_records_patient_kind", ["patient", "kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ehr_records", schema=None) as batch_op:
        batch_op.drop_index("ix_ehr_records_patient_kind")
    op.drop_table("ehr_records")
