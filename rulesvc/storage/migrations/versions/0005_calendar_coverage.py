"""Calendar coverage: timers and SLA figures remember whether their deadline was provisional.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("timers", sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("timers", sa.Column("calendar_version", sa.Integer(), nullable=True))
    op.add_column(
        "sla_results", sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("sla_results") as batch:
        batch.drop_column("provisional")
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("calendar_version")
        batch.drop_column("provisional")
