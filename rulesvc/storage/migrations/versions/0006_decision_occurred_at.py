"""When each decided event occurred, indexed: backtests select events by `occurred_at`, not by when they were
logged (a late event belongs to the period it occurred in).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 1000


def _occurred_at(event_text: str) -> datetime | None:
    try:
        value = json.loads(event_text).get("occurred_at")
        instant = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        return None
    return instant.astimezone(UTC) if instant.tzinfo is not None else None


def upgrade() -> None:
    op.add_column("decision_inputs", sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_decision_inputs_occurred_at", "decision_inputs", ["occurred_at"])
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    inputs = sa.table(
        "decision_inputs",
        sa.column("decision_id", sa.String()),
        sa.column("event", sa.Text()),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
    )
    after = ""
    while True:
        rows = bind.execute(
            sa.select(inputs.c.decision_id, inputs.c.event)
            .where(inputs.c.decision_id > after)
            .order_by(inputs.c.decision_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        for decision_id, event_text in rows:
            instant = _occurred_at(event_text)
            if instant is not None:
                value = instant.replace(tzinfo=None) if sqlite else instant
                bind.execute(
                    inputs.update().where(inputs.c.decision_id == decision_id).values(occurred_at=value)
                )
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_decision_inputs_occurred_at", table_name="decision_inputs")
    op.drop_column("decision_inputs", "occurred_at")
