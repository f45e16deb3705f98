"""ORM tables. Private to `rulesvc.storage`; the migrations in `migrations/versions` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# A 64-bit integer that is still SQLite's rowid alias (autoincrementing) when it is the primary key.
Int64 = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; times must be aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class DecisionRow(Base):
    __tablename__ = "decisions"
    # Searches (`GET /v1/decisions`) come newest first, by ticket or by time: keyset paging on these.
    __table_args__ = (
        Index("ix_decisions_ticket_recent", "ticket_id", "decided_at", "chain_seq"),
        Index("ix_decisions_recent", "decided_at", "chain_seq"),
        # the late-fires report (migration 0023)
        Index(
            "ix_decisions_timer_fires",
            "decided_at",
            postgresql_where=text("event_id LIKE 'timer:%'"),
            sqlite_where=text("event_id LIKE 'timer:%'"),
        ),
    )

    decision_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    ticket_id: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    record: Mapped[str] = mapped_column(Text)
    input_salt: Mapped[str] = mapped_column(String(32))
    input_digest: Mapped[str] = mapped_column(String(64))
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[str] = mapped_column(String(64))


class DecisionInputRow(Base):
    """The event exactly as received, personal data in clear: read only through the compliance route."""

    __tablename__ = "decision_inputs"

    decision_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    event: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    """When the event occurred (its `occurred_at`): backtests select by it."""


class DecisionTermRow(Base):
    """A search term of a decision (`rulesvc.decisions.search.decision_terms`: a fired ruleset, rule, table or
    row, an action type), newest first within a term. Derived from the record; not part of the chain."""

    __tablename__ = "decision_terms"

    term: Mapped[str] = mapped_column(String(400), primary_key=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    chain_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    decision_id: Mapped[str] = mapped_column(String(36))


class ActionRow(Base):
    """The action feed (outbox): `cursor` grows in commit order because appends hold the chain lock."""

    __tablename__ = "actions"

    cursor: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    ticket_id: Mapped[str] = mapped_column(String(200), index=True)
    decision_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(Text)


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_kind_seq", "kind", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """One row (id 1): the chain's last seq and hash. Appenders lock it (FOR UPDATE) to serialize."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    principal_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    """The person or service account the key belongs to (`principals`)."""
    seal_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The chain entry holding the digest of this key's roles, owner and status (`rulesvc.people.seals`)."""
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """Set when the key is rotated: it keeps working until then (the overlap window)."""
    replaced_by: Mapped[str | None] = mapped_column(String(12), nullable=True)


class OpsStatusRow(Base):
    """Operational status shared by replicas (migration 0017): worker heartbeats, the last verify."""

    __tablename__ = "ops_status"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    payload: Mapped[str] = mapped_column(Text, default="{}")
