"""secondary CRM connections (role) and contact claims shared by every process

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# SQLite's unique constraint from 0001 has no name; batch mode reflects it under this convention.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s"}
_PRIMARY_ONLY = sa.text("role = 'primary'")


def _old_unique_name() -> str:
    # PostgreSQL named it itself (<table>_<columns>_key); SQLite gets the batch convention's name.
    return (
        "connections_agent_id_capability_key"
        if op.get_bind().dialect.name == "postgresql"
        else ("uq_connections_agent_id_capability")
    )


def upgrade() -> None:
    with op.batch_alter_table("connections", naming_convention=_NAMING) as batch:
        batch.add_column(sa.Column("role", sa.String(length=16), server_default="primary", nullable=False))
        batch.drop_constraint(_old_unique_name(), type_="unique")
        batch.create_unique_constraint(
            "uq_connections_agent_capability_provider", ["agent_id", "capability", "provider"]
        )
    op.create_index(
        "uq_connections_agent_primary",
        "connections",
        ["agent_id", "capability"],
        unique=True,
        sqlite_where=_PRIMARY_ONLY,
        postgresql_where=_PRIMARY_ONLY,
    )
    op.create_table(
        "contact_claims",
        sa.Column("connection_id", sa.String(length=100), nullable=False),
        sa.Column("identity", sa.String(length=340), nullable=False),
        sa.Column("holder", sa.String(length=40), nullable=True),
        sa.Column("held_until", sa.DateTime(), nullable=True),
        sa.Column("contact_id", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "identity"),
    )


def downgrade() -> None:
    op.drop_table("contact_claims")
    op.drop_index("uq_connections_agent_primary", table_name="connections")
    op.execute("DELETE FROM connections WHERE role <> 'primary'")
    with op.batch_alter_table("connections") as batch:
        batch.drop_constraint("uq_connections_agent_capability_provider", type_="unique")
        batch.create_unique_constraint(_old_unique_name(), ["agent_id", "capability"])
        batch.drop_column("role")
