"""message delivery history and origin, WhatsApp windows, REST-hook subscriptions; wider recipients for email

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sent_messages") as batch:
        batch.alter_column("to_number", type_=sa.String(length=320), existing_type=sa.String(length=64))
        batch.add_column(sa.Column("tool", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("call_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("record_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("error_detail", sa.String(length=255), nullable=True))
    with op.batch_alter_table("outbox_messages") as batch:
        batch.alter_column("to_number", type_=sa.String(length=320), existing_type=sa.String(length=32))
    op.create_table(
        "message_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_detail", sa.String(length=255), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["sent_messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_message_events_message_id"), "message_events", ["message_id"], unique=False)
    op.create_table(
        "whatsapp_sessions",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("last_inbound_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agent_id", "phone"),
    )
    op.create_table(
        "hook_subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("target_url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_hook_subscriptions_agent_id"), "hook_subscriptions", ["agent_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_hook_subscriptions_agent_id"), table_name="hook_subscriptions")
    op.drop_table("hook_subscriptions")
    op.drop_table("whatsapp_sessions")
    op.drop_index(op.f("ix_message_events_message_id"), table_name="message_events")
    op.drop_table("message_events")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.alter_column("to_number", type_=sa.String(length=32), existing_type=sa.String(length=320))
    with op.batch_alter_table("sent_messages") as batch:
        batch.drop_column("error_detail")
        batch.drop_column("record_id")
        batch.drop_column("call_id")
        batch.drop_column("tool")
        batch.alter_column("to_number", type_=sa.String(length=64), existing_type=sa.String(length=320))
