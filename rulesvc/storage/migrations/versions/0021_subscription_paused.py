"""A webhook subscription paused by an operator (`PATCH /v1/webhooks/{id}` with `active: false`) says so:
a worker start brings a notification channel's subscription in line with the settings but leaves one that
an operator paused inactive until it is resumed.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.add_column(sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()))
    # a subscription made inactive through the API before this revision was paused by an operator; a
    # notification channel's may as well have been deactivated because its settings were removed, and the
    # next worker start with its settings would have resumed it: so only the webhooks count as paused
    op.execute(
        "UPDATE webhook_subscriptions SET paused = TRUE WHERE active = FALSE AND url NOT LIKE 'channel:%'"
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("paused")
