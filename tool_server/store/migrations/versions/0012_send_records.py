"""send_records: what each connection sent under each idempotency key, shared by every process

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 20:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_records",
        sa.Column("connection_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "name"),
    )
    op.create_index("ix_send_records_updated_at", "send_records", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_send_records_updated_at", table_name="send_records")
    op.drop_table("send_records")
