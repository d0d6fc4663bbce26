"""slot holds (hold_slot and bookings in flight) and each agent's hold length

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("hold_minutes", sa.Integer(), server_default=sa.text("5"), nullable=False))
    op.create_table(
        "slot_holds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("end_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("call_id", sa.String(length=255), nullable=True),
        sa.Column("contact_phone", sa.String(length=32), nullable=True),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("reservation_id", sa.String(length=255), nullable=True),
        sa.Column("appointment_id", sa.String(length=255), nullable=True),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_slot_holds_agent_start", "slot_holds", ["agent_id", "start_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_slot_holds_agent_start", table_name="slot_holds")
    op.drop_table("slot_holds")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("hold_minutes")
