"""the built-in ledger: customers and invoices for the accounting capability

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 15:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_KEYED = sa.text("idempotency_key IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "ledger_customers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ledger_customers_agent_id"), "ledger_customers", ["agent_id"], unique=False)
    op.create_index(
        "uq_ledger_customers_agent_idempotency",
        "ledger_customers",
        ["agent_id", "idempotency_key"],
        unique=True,
        sqlite_where=_KEYED,
        postgresql_where=_KEYED,
    )
    op.create_table(
        "ledger_invoices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total_minor", sa.Integer(), nullable=False),
        sa.Column("paid_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.String(length=10), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["ledger_customers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ledger_invoices_agent_id"), "ledger_invoices", ["agent_id"], unique=False)
    op.create_index(op.f("ix_ledger_invoices_customer_id"), "ledger_invoices", ["customer_id"], unique=False)
    op.create_index(
        "uq_ledger_invoices_agent_idempotency",
        "ledger_invoices",
        ["agent_id", "idempotency_key"],
        unique=True,
        sqlite_where=_KEYED,
        postgresql_where=_KEYED,
    )


def downgrade() -> None:
    op.drop_table("ledger_invoices")
    op.drop_table("ledger_customers")
