"""Per-day roll-ups of the reports (看板与报表): `report_rollups` holds, per day of decision time
(Asia/Shanghai) and report part, the sums of that day's decision facts and rule and row hits, and
`report_rollup_days` which days of which part are stored (`rulesvc.storage.report_rollups`, filled on the
first read of a closed day); the facts gain an index on their successor's decision time.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rulesvc.storage.fact_tables import ExactNumber
from rulesvc.storage.tables import Int64

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_rollups",
        sa.Column("id", Int64, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("part", sa.Text(), nullable=False),
        sa.Column("since_day", sa.Date(), nullable=True),
        sa.Column("kind", sa.String(64), nullable=True),
        sa.Column("occ_day", sa.Date(), nullable=True),
        sa.Column("next_occ_day", sa.Date(), nullable=True),
        sa.Column("auto_day", sa.Date(), nullable=True),
        sa.Column("auto_occ_day", sa.Date(), nullable=True),
        sa.Column("key_a", sa.Text(), nullable=True),
        sa.Column("key_b", sa.Text(), nullable=True),
        sa.Column("bin", sa.Float(), nullable=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("total", ExactNumber(), nullable=True),
        sa.Column("top", sa.Float(), nullable=True),
    )
    op.create_index("ix_report_rollups_day", "report_rollups", ["part", "day"])
    op.create_index("ix_report_rollups_since", "report_rollups", ["part", "since_day"])
    op.create_table(
        "report_rollup_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("part", sa.Text(), primary_key=True),
    )
    op.create_index(
        "ix_decision_facts_next",
        "decision_facts",
        ["next_decided_at"],
        postgresql_where=sa.text("next_decided_at IS NOT NULL"),
        sqlite_where=sa.text("next_decided_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_decision_facts_next", table_name="decision_facts")
    op.drop_table("report_rollup_days")
    op.drop_index("ix_report_rollups_since", table_name="report_rollups")
    op.drop_index("ix_report_rollups_day", table_name="report_rollups")
    op.drop_table("report_rollups")
