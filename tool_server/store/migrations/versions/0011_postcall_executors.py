"""postcall_executors: one heartbeat row per post-call executor, for taking over dead workers' workflows

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 17:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "postcall_executors",
        sa.Column("executor_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("taken_by", sa.String(length=255), nullable=True),
        sa.Column("taken_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("executor_id"),
    )


def downgrade() -> None:
    op.drop_table("postcall_executors")
