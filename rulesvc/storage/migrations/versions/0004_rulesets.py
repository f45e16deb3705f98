"""Ruleset lifecycle: published versions (immutable) and drafts under review.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Int64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ruleset_versions",
        sa.Column("id", Int64, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("cases", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("draft_id", sa.String(36), nullable=True),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("approver", sa.String(64), nullable=True),
        sa.Column("approval_comment", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("approved_at", TZ, nullable=True),
        sa.Column("published_at", TZ, nullable=False),
        sa.Column("published_by", sa.String(64), nullable=False),
        sa.Column("effective_at", TZ, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_ruleset_versions_name_version"),
    )
    op.create_index("ix_ruleset_versions_effective_at", "ruleset_versions", ["effective_at"])
    op.create_table(
        "ruleset_drafts",
        sa.Column("draft_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("cases", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("tests", sa.Text(), nullable=False),
        sa.Column("replay", sa.Text(), nullable=True),
        sa.Column("submitted_at", TZ, nullable=True),
        sa.Column("reviewer", sa.String(64), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=False),
        sa.Column("reviewed_at", TZ, nullable=True),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("published_at", TZ, nullable=True),
        sa.Column("published_by", sa.String(64), nullable=True),
        sa.Column("effective_at", TZ, nullable=True),
    )
    op.create_index("ix_ruleset_drafts_name", "ruleset_drafts", ["name"])


def downgrade() -> None:
    op.drop_index("ix_ruleset_drafts_name", table_name="ruleset_drafts")
    op.drop_table("ruleset_drafts")
    op.drop_index("ix_ruleset_versions_effective_at", table_name="ruleset_versions")
    op.drop_table("ruleset_versions")
