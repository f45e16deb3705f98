"""Sign-in sessions (only the SHA-256 of each session token is stored) and a pending TOTP secret per
principal (enrolment not yet confirmed).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("principal_id", sa.String(16), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
    )
    op.create_index("ix_sessions_principal_id", "sessions", ["principal_id"])
    with op.batch_alter_table("principals") as batch:
        batch.add_column(sa.Column("totp_pending", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("principals") as batch:
        batch.drop_column("totp_pending")
    op.drop_index("ix_sessions_principal_id", "sessions")
    op.drop_table("sessions")
