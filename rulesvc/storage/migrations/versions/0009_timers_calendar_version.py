"""Re-planning the open timers of a calendar finds them by (calendar, calendar_version).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_timers_calendar_version", "timers", ["calendar", "calendar_version"])


def downgrade() -> None:
    op.drop_index("ix_timers_calendar_version", table_name="timers")
