"""API keys and principals point at the chain entry sealing what they grant (`seal_seq`); rows stored before
are sealed by one `grants_sealed` entry (`rulesvc.people.seals`); sessions get `seal_seq` too, and those
open before (no chain entry) end.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("seal_seq", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("principals") as batch:
        batch.add_column(sa.Column("seal_seq", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("seal_seq", sa.BigInteger(), nullable=True))
    _end_sessions(op.get_bind())
    _seal_existing(op.get_bind())


def _end_sessions(conn: sa.Connection) -> None:
    """Sessions open before sealing have no chain entry: they end (people sign in again)."""
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    sessions = sa.table("sessions", sa.column("revoked_at", sa.DateTime))
    conn.execute(sa.update(sessions).where(sessions.c.revoked_at.is_(None)).values(revoked_at=now))


def _seal_existing(conn: sa.Connection) -> None:
    from rulesvc.audit.chain import next_entry
    from rulesvc.people.seals import KIND_GRANTS_SEALED, grants_payload, key_digest, user_digest

    keys = sa.table(
        "api_keys",
        sa.column("key_id", sa.String),
        sa.column("key_hash", sa.String),
        sa.column("roles", sa.String),
        sa.column("principal_id", sa.String),
        sa.column("revoked_at", sa.DateTime),
        sa.column("seal_seq", sa.BigInteger),
    )
    users = sa.table(
        "principals",
        *(
            sa.column(c, sa.String)
            for c in ("principal_id", "kind", "name", "username", "roles", "owner_id", "password_hash")
        ),
        sa.column("totp_secret", sa.String),
        sa.column("disabled", sa.Boolean),
        sa.column("seal_seq", sa.BigInteger),
    )
    key_digests = {
        key_id: key_digest(key_id, key_hash, roles, principal_id, revoked_at is not None)
        for key_id, key_hash, roles, principal_id, revoked_at in conn.execute(
            sa.select(keys.c.key_id, keys.c.key_hash, keys.c.roles, keys.c.principal_id, keys.c.revoked_at)
        )
    }
    user_digests = {
        row.principal_id: user_digest(
            row.principal_id,
            row.kind,
            row.name,
            row.username,
            row.roles,
            bool(row.disabled),
            row.owner_id,
            row.password_hash,
            row.totp_secret,
        )
        for row in conn.execute(sa.select(users))
    }
    if not key_digests and not user_digests:
        return
    head: Any = sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash"))
    audit: Any = sa.table(
        "audit_log", *(sa.column(c) for c in ("seq", "at", "kind", "subject", "payload", "prev_hash", "hash"))
    )
    seq, prev = conn.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update()).one()
    entry = next_entry(
        seq,
        prev,
        datetime.now(UTC).isoformat(),
        KIND_GRANTS_SEALED,
        "",
        grants_payload(key_digests, user_digests),
    )
    conn.execute(
        sa.insert(audit).values(
            seq=entry.seq,
            at=entry.at,
            kind=entry.kind,
            subject=entry.subject,
            payload=entry.payload_text,
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )
    )
    conn.execute(sa.update(head).where(head.c.id == 1).values(seq=entry.seq, hash=entry.hash))
    if key_digests:
        conn.execute(sa.update(keys).values(seal_seq=entry.seq))
    if user_digests:
        conn.execute(sa.update(users).values(seal_seq=entry.seq))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("seal_seq")
    with op.batch_alter_table("principals") as batch:
        batch.drop_column("seal_seq")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("seal_seq")
