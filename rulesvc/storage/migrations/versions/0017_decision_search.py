"""Decision search (`GET /v1/decisions`): indexes for newest-first keyset paging by ticket and by time, and
`decision_terms` (fired rulesets, rules, tables, rows and action types of each decision), filled from the
stored records.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_BATCH = 1000
_MAX_TERM = 400


def _terms(record_text: str) -> list[str]:
    """As `rulesvc.decisions.search.decision_terms` was at this revision (frozen here)."""
    try:
        record: Any = json.loads(record_text)
    except ValueError:
        return []
    terms: dict[str, None] = {}
    for hit in record.get("fired") or ():
        if not isinstance(hit, dict) or not hit.get("ruleset"):
            continue
        ruleset, rule = str(hit["ruleset"]), str(hit.get("rule", ""))
        terms["r:" + ruleset] = None
        if rule:
            terms[f"r:{ruleset}/{rule}"] = None
            if "#" in rule:
                terms[f"r:{ruleset}/{rule.split('#', 1)[0]}"] = None
    for action in record.get("actions") or ():
        if isinstance(action, dict) and action.get("type"):
            terms["a:" + str(action["type"])] = None
    return [term for term in terms if len(term) <= _MAX_TERM]


def upgrade() -> None:
    op.drop_index("ix_decisions_ticket_id", table_name="decisions")
    op.create_index("ix_decisions_ticket_recent", "decisions", ["ticket_id", "decided_at", "chain_seq"])
    op.create_index("ix_decisions_recent", "decisions", ["decided_at", "chain_seq"])
    terms = op.create_table(
        "decision_terms",
        sa.Column("term", sa.String(_MAX_TERM), primary_key=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("chain_seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
    )
    assert terms is not None
    bind = op.get_bind()
    decisions = sa.table(
        "decisions",
        sa.column("decision_id", sa.String()),
        sa.column("decided_at", sa.DateTime(timezone=True)),
        sa.column("chain_seq", sa.BigInteger()),
        sa.column("record", sa.Text()),
    )
    after = ""
    while True:
        rows = bind.execute(
            sa.select(
                decisions.c.decision_id, decisions.c.decided_at, decisions.c.chain_seq, decisions.c.record
            )
            .where(decisions.c.decision_id > after)
            .order_by(decisions.c.decision_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        values = [
            {"term": term, "decided_at": decided_at, "chain_seq": seq, "decision_id": decision_id}
            for decision_id, decided_at, seq, record in rows
            for term in _terms(record)
        ]
        if values:
            bind.execute(terms.insert(), values)
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_table("decision_terms")
    op.drop_index("ix_decisions_recent", table_name="decisions")
    op.drop_index("ix_decisions_ticket_recent", table_name="decisions")
    op.create_index("ix_decisions_ticket_id", "decisions", ["ticket_id"])
