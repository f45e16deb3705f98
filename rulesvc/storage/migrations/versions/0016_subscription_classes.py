"""Webhook subscriptions carry the field classes their bodies hold in clear (default 公开, 内部; a grant
beyond it is a `webhook_subscription` chain entry).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.add_column(sa.Column("classes", sa.Text(), nullable=False, server_default='["公开","内部"]'))


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("classes")
