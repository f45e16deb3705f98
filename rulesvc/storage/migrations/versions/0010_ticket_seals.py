"""Tickets point at the chain entry sealing their state (`seal_seq`); tickets stored before are sealed by
one `tickets_sealed` entry (`rulesvc.storage.ticket_seals`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("seal_seq", sa.BigInteger(), nullable=True))
    _seal_existing(op.get_bind())


def _seal_existing(conn: sa.Connection) -> None:
    from rulesvc.audit.chain import next_entry
    from rulesvc.storage.tables import AuditHeadRow, AuditRow
    from rulesvc.storage.ticket_seals import KIND_TICKETS_SEALED, SEALED_TIMER_COLUMNS, is_empty, state_digest
    from rulesvc.storage.timer_tables import TicketRow, TimerRow

    tickets_table: Any = TicketRow.__table__
    timers_table: Any = TimerRow.__table__
    ticket_columns = ("ticket_id", "kind", "group_name", "snapshot", "timeline")
    tickets = conn.execute(sa.select(*(tickets_table.c[c] for c in ticket_columns))).all()
    if not tickets:
        return
    timers: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(
        sa.select(timers_table.c.ticket_id, *(timers_table.c[c] for c in SEALED_TIMER_COLUMNS))
    ):
        timers.setdefault(row[0], []).append(dict(zip(SEALED_TIMER_COLUMNS, row[1:], strict=True)))
    digests = {
        ticket_id: state_digest(ticket_id, kind, group, snapshot, timeline, timers.get(ticket_id, []))
        for ticket_id, kind, group, snapshot, timeline in tickets
        if not is_empty(kind, snapshot, timeline, timers.get(ticket_id, []))
    }
    if not digests:
        return
    head_table: Any = AuditHeadRow.__table__
    audit_table: Any = AuditRow.__table__
    seq, prev = conn.execute(
        sa.select(head_table.c.seq, head_table.c.hash).where(head_table.c.id == 1).with_for_update()
    ).one()
    entry = next_entry(
        seq,
        prev,
        datetime.now(UTC).isoformat(),
        KIND_TICKETS_SEALED,
        "",
        {"tickets": dict(sorted(digests.items()))},
    )
    conn.execute(
        sa.insert(audit_table).values(
            seq=entry.seq,
            at=entry.at,
            kind=entry.kind,
            subject=entry.subject,
            payload=entry.payload_text,
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )
    )
    conn.execute(sa.update(head_table).where(head_table.c.id == 1).values(seq=entry.seq, hash=entry.hash))
    conn.execute(
        sa.update(tickets_table)
        .where(tickets_table.c.ticket_id.in_(list(digests)))
        .values(seal_seq=entry.seq)
    )


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("seal_seq")
