"""The ticket reports read `decision_facts` by decision time from the index alone: `ix_decision_facts_recent`
gains every column they read but the ticket's fields (an index-only scan reads about a third of the
heap's pages), and the stays left in a stage (the rows that have one) get a partial index of their own; so
do the decisions of timer firings (the late-fires report read every decision of its period to find them).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rulesvc.storage.fact_tables import COVERED

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_decision_facts_recent", table_name="decision_facts")
    op.create_index(
        "ix_decision_facts_recent", "decision_facts", ["decided_at"], postgresql_include=list(COVERED)
    )
    op.create_index(
        "ix_decision_facts_stays",
        "decision_facts",
        ["decided_at"],
        postgresql_include=["kind", "left_stage", "stay_seconds"],
        postgresql_where=sa.text("left_stage IS NOT NULL"),
        sqlite_where=sa.text("left_stage IS NOT NULL"),
    )
    op.create_index(
        "ix_decisions_timer_fires",
        "decisions",
        ["decided_at"],
        postgresql_where=sa.text("event_id LIKE 'timer:%'"),
        sqlite_where=sa.text("event_id LIKE 'timer:%'"),
    )


def downgrade() -> None:
    op.drop_index("ix_decisions_timer_fires", table_name="decisions")
    op.drop_index("ix_decision_facts_stays", table_name="decision_facts")
    op.drop_index("ix_decision_facts_recent", table_name="decision_facts")
    op.create_index("ix_decision_facts_recent", "decision_facts", ["decided_at"])
