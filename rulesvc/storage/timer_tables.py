"""ORM tables of the SLA scheduler (tickets' latest snapshots, timers, SLA figures). Private to storage.

Created by migration `0002` (`provisional`, `calendar_version`: `0005`). Every writer of a ticket's timers first locks that ticket's row, so the ticket
row is the one mutex of a ticket; timer rows are never locked on their own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from rulesvc.storage.tables import Base, Int64, UTCDateTime


class TicketRow(Base):
    """A ticket's latest snapshot (events merged in order), fed to the engine when its timers fire."""

    __tablename__ = "tickets"

    ticket_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), default="")
    snapshot: Mapped[str] = mapped_column(Text, default="{}")
    group_name: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    timeline: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    """The ticket's timer journal in event time, its emitted points and recorded SLA figures (migration 0007;
    `rulesvc.sla.ticket_timers`)."""
    seal_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The chain entry holding the digest of this ticket's state and timers (`rulesvc.storage.ticket_seals`,
    migration 0010); None only for a row nothing was written to yet."""


class TimerRow(Base):
    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("ticket_id", "name", name="uq_timers_ticket_name"),
        Index(
            "ix_timers_next_fire_at",
            "next_fire_at",
            postgresql_where=text("next_fire_at IS NOT NULL"),
            sqlite_where=text("next_fire_at IS NOT NULL"),
        ),
        Index("ix_timers_calendar_version", "calendar", "calendar_version"),
    )

    id: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    generation: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_us: Mapped[int] = mapped_column(BigInteger)
    warnings: Mapped[str] = mapped_column(Text)
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consumed_us: Mapped[int] = mapped_column(BigInteger)
    remaining_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fired: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_point: Mapped[str | None] = mapped_column(String(200), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    calendar_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SlaResultRow(Base):
    """One finished timer generation: met (with the working time left) or breached (and by how much)."""

    __tablename__ = "sla_results"
    __table_args__ = (UniqueConstraint("ticket_id", "timer", "generation", name="uq_sla_results_timer"),)

    id: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    timer: Mapped[str] = mapped_column(String(200))
    generation: Mapped[int] = mapped_column(Integer)
    ruleset: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(400))
    calendar: Mapped[str] = mapped_column(String(64))
    group_name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    remaining_us: Mapped[int] = mapped_column(BigInteger)
    breach_us: Mapped[int] = mapped_column(BigInteger)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
