"""SLA scheduler: tickets' latest snapshots, timers (indexed on their next point) and SLA figures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Int64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("ticket_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False, server_default=""),
        sa.Column("snapshot", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("group_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "timers",
        sa.Column("id", Int64, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("calendar", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(400), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("duration_us", sa.BigInteger(), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.Column("anchor_at", TZ, nullable=False),
        sa.Column("consumed_us", sa.BigInteger(), nullable=False),
        sa.Column("remaining_us", sa.BigInteger(), nullable=True),
        sa.Column("fired", sa.Text(), nullable=False),
        sa.Column("due_at", TZ, nullable=True),
        sa.Column("next_fire_at", TZ, nullable=True),
        sa.Column("next_point", sa.String(200), nullable=True),
        sa.Column("stopped_at", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("ticket_id", "name", name="uq_timers_ticket_name"),
    )
    # Only timers that still have a point to fire are indexed: a poll reads the head of this index, so its
    # cost does not grow with the number of pending timers (EXPLAIN in tests/integration/test_timers_store).
    op.create_index(
        "ix_timers_next_fire_at",
        "timers",
        ["next_fire_at"],
        postgresql_where=sa.text("next_fire_at IS NOT NULL"),
        sqlite_where=sa.text("next_fire_at IS NOT NULL"),
    )
    op.create_table(
        "sla_results",
        sa.Column("id", Int64, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("timer", sa.String(200), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("ruleset", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(400), nullable=False),
        sa.Column("calendar", sa.String(64), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("decided_at", TZ, nullable=False),
        sa.Column("stopped_at", TZ, nullable=True),
        sa.Column("remaining_us", sa.BigInteger(), nullable=False),
        sa.Column("breach_us", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("ticket_id", "timer", "generation", name="uq_sla_results_timer"),
    )
    op.create_index("ix_sla_results_decided_at", "sla_results", ["decided_at"])


def downgrade() -> None:
    op.drop_index("ix_sla_results_decided_at", table_name="sla_results")
    op.drop_table("sla_results")
    op.drop_index("ix_timers_next_fire_at", table_name="timers")
    op.drop_table("timers")
    op.drop_table("tickets")
