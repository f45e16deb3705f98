"""Calendars are versioned like rulesets: the lifecycle tables say which artifact type a row is.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ruleset_versions") as batch:
        batch.add_column(sa.Column("artifact", sa.String(16), nullable=False, server_default="ruleset"))
        batch.drop_constraint("uq_ruleset_versions_name_version", type_="unique")
        batch.create_unique_constraint(
            "uq_ruleset_versions_artifact_name_version", ["artifact", "name", "version"]
        )
    with op.batch_alter_table("ruleset_drafts") as batch:
        batch.add_column(sa.Column("artifact", sa.String(16), nullable=False, server_default="ruleset"))


def downgrade() -> None:
    op.execute("DELETE FROM ruleset_versions WHERE artifact <> 'ruleset'")
    op.execute("DELETE FROM ruleset_drafts WHERE artifact <> 'ruleset'")
    with op.batch_alter_table("ruleset_drafts") as batch:
        batch.drop_column("artifact")
    with op.batch_alter_table("ruleset_versions") as batch:
        batch.drop_constraint("uq_ruleset_versions_artifact_name_version", type_="unique")
        batch.create_unique_constraint("uq_ruleset_versions_name_version", ["name", "version"])
        batch.drop_column("artifact")
