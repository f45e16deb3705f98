"""An index on the audit chain by kind and position: the newest entries of one kind (key and user
administration on the console's 审计 page) read without scanning the decisions' entries.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_kind_seq", "audit_log", ["kind", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_kind_seq", table_name="audit_log")
