"""`decision_facts`: one narrow row per decision of a ticket event, with the ticket's state folded at write
time, for the ticket reports (看板与报表) to read instead of the stored records; filled from the records
already stored (`rulesvc.storage.decision_facts.backfill`: one statement on PostgreSQL, in Python on
SQLite).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rulesvc.storage.decision_facts import backfill
from rulesvc.storage.fact_tables import JsonText

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_facts",
        sa.Column("decision_id", sa.String(36), primary_key=True),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chain_seq", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("fields", JsonText(), nullable=False),
        sa.Column("auto", sa.Boolean(), nullable=False),
        sa.Column("first_occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.String(200), nullable=True),
        sa.Column("stage_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_stage", sa.String(200), nullable=True),
        sa.Column("stay_seconds", sa.Float(), nullable=True),
        sa.Column("amount", sa.Numeric(), nullable=True),
        sa.Column("auto_decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auto_occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("routed", sa.String(200), nullable=False),
        sa.Column("next_decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_occurred_at", sa.DateTime(timezone=True), nullable=True),
    )
    backfill(op.get_bind())
    op.create_index("ix_decision_facts_recent", "decision_facts", ["decided_at"])
    op.create_index(
        "ix_decision_facts_latest",
        "decision_facts",
        ["ticket_id"],
        postgresql_where=sa.text("next_decided_at IS NULL"),
        sqlite_where=sa.text("next_decided_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("decision_facts")
