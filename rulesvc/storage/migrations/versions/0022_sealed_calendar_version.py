"""The calendar version a timer is planned on is part of its ticket's sealed state (a re-plan moves a ticket
to a new calendar version by its timer rows alone); tickets sealed before are sealed again, by one
`tickets_sealed` entry, when their stored state still matches their seal (`rulesvc.storage.ticket_seals`).
A ticket whose state no longer matches its seal keeps it: `verify` goes on reporting it.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# The sealed timer columns before this revision.
_BEFORE = (
    "name",
    "generation",
    "calendar",
    "rule",
    "status",
    "started_at",
    "duration_us",
    "warnings",
    "anchor_at",
    "consumed_us",
    "fired",
)


def upgrade() -> None:
    _reseal(op.get_bind())


def _reseal(conn: sa.Connection) -> None:
    from rulesvc.audit.chain import ChainEntry, entry_hash, next_entry
    from rulesvc.storage.tables import AuditHeadRow, AuditRow
    from rulesvc.storage.ticket_seals import (
        KIND_TICKETS_SEALED,
        SEALED_TIMER_COLUMNS,
        sealed_digest,
        state_digest,
    )
    from rulesvc.storage.timer_tables import TicketRow, TimerRow

    tickets_table: Any = TicketRow.__table__
    timers_table: Any = TimerRow.__table__
    audit_table: Any = AuditRow.__table__
    columns = ("ticket_id", "kind", "group_name", "snapshot", "timeline", "seal_seq")
    tickets = conn.execute(
        sa.select(*(tickets_table.c[c] for c in columns)).where(tickets_table.c.seal_seq.is_not(None))
    ).all()
    if not tickets:
        return
    timers: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(
        sa.select(timers_table.c.ticket_id, *(timers_table.c[c] for c in SEALED_TIMER_COLUMNS))
    ):
        timers.setdefault(row[0], []).append(dict(zip(SEALED_TIMER_COLUMNS, row[1:], strict=True)))
    seqs = sorted({int(t[5]) for t in tickets})
    entries: dict[int, ChainEntry] = {}
    for offset in range(0, len(seqs), 500):
        for row in conn.execute(
            sa.select(
                *(audit_table.c[c] for c in ("seq", "at", "kind", "subject", "payload", "prev_hash", "hash"))
            ).where(audit_table.c.seq.in_(seqs[offset : offset + 500]))
        ):
            entries[int(row[0])] = ChainEntry(*row)
    digests: dict[str, str] = {}
    for ticket_id, kind, group, snapshot, timeline, seal_seq in tickets:
        rows = timers.get(ticket_id, [])
        entry = entries.get(int(seal_seq))
        if (
            entry is None
            or entry_hash(entry.seq, entry.at, entry.kind, entry.subject, entry.payload_text, entry.prev_hash)
            != entry.hash
        ):
            continue
        sealed = sealed_digest(entry, ticket_id)
        now = state_digest(ticket_id, kind, group, snapshot, timeline, rows)
        if sealed != now and sealed == state_digest(
            ticket_id, kind, group, snapshot, timeline, rows, _BEFORE
        ):
            digests[ticket_id] = now
    if not digests:
        return
    head_table: Any = AuditHeadRow.__table__
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
    ids = sorted(digests)
    for offset in range(0, len(ids), 500):
        conn.execute(
            sa.update(tickets_table)
            .where(tickets_table.c.ticket_id.in_(ids[offset : offset + 500]))
            .values(seal_seq=entry.seq)
        )


def downgrade() -> None:
    """Nothing to undo in the schema; tickets keep the seals made since (a newer release reads them)."""
