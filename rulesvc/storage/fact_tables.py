"""`decision_facts`: one narrow row per decision of a ticket event, what the ticket reports read instead of
the ≈ 3 KB stored records (migration 0020; written with each decision, `rulesvc.storage.decision_facts`).

Besides what the event said (kind, owner, the ticket's fields), each row carries the ticket's state after
the decision, folded from its previous row at write time (stage and since when, last known amount, last
auto-approval, last routing group, first event time), and the time of the ticket's next decision (set when
that one is written), so that every report is one pass over the rows of its period: a ticket's last row
in a bucket or in the period is the one whose next decision falls outside it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Dialect,
    Float,
    Index,
    Numeric,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from rulesvc.storage.tables import Base, Int64, UTCDateTime


class JsonText(TypeDecorator[str]):
    """JSON given and read as its text; `jsonb` on PostgreSQL (the reports look into it), text elsewhere."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else Text())

    def bind_processor(self, dialect: Dialect) -> None:
        return None  # already JSON text (JSONB's own processor would encode it as a JSON string)

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class ExactNumber(TypeDecorator[Decimal]):
    """A `numeric` read back as a Decimal by every reader (also the hot path's, which gives no column type)."""

    impl = Numeric
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        return lambda value: value if value is None or isinstance(value, Decimal) else Decimal(str(value))


COVERED = (
    "kind",
    "occurred_at",
    "next_decided_at",
    "next_occurred_at",
    "amount",
    "auto_decided_at",
    "auto_occurred_at",
    "routed",
    "owner",
    "first_occurred_at",
    "stage",
)
"""What the reports read of a row besides its decision time, but the ticket's fields."""


class DecisionFactRow(Base):
    __tablename__ = "decision_facts"
    __table_args__ = (
        # the reports read by decision time from the index alone (migration 0023)
        Index("ix_decision_facts_recent", "decided_at", postgresql_include=list(COVERED)),
        Index(
            "ix_decision_facts_stays",
            "decided_at",
            postgresql_include=["kind", "left_stage", "stay_seconds"],
            postgresql_where=text("left_stage IS NOT NULL"),
            sqlite_where=text("left_stage IS NOT NULL"),
        ),
        # the predecessors of a day's decisions, for the reports' roll-ups (migration 0024)
        Index(
            "ix_decision_facts_next",
            "next_decided_at",
            postgresql_where=text("next_decided_at IS NOT NULL"),
            sqlite_where=text("next_decided_at IS NOT NULL"),
        ),
        Index(
            "ix_decision_facts_latest",
            "ticket_id",
            postgresql_where=text("next_decided_at IS NULL"),
            sqlite_where=text("next_decided_at IS NULL"),
        ),
    )

    decision_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """The event's time (`occurred_at`; the decision's when the event has none): reports bucket by it."""
    kind: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(200))
    """The event's `owner`: '' when absent, JSON text when not a string (`null` → 'None')."""
    fields: Mapped[str] = mapped_column(JsonText())
    """The event's ticket (as stored in the masked record)."""
    auto: Mapped[bool] = mapped_column(Boolean)
    """The decision auto-approved the ticket (an `auto_approve` action)."""
    # the ticket's state after this decision, folded from its previous row
    first_occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stage: Mapped[str | None] = mapped_column(String(200), nullable=True)
    stage_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    left_stage: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The stage this decision moved the ticket out of, after `stay_seconds` (event time) in it."""
    stay_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(ExactNumber(), nullable=True)
    """The ticket's last non-zero numeric `amount` so far."""
    auto_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    auto_occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """The ticket's last auto-approving decision so far."""
    routed: Mapped[str] = mapped_column(String(200))
    """The group of the ticket's last `assign` so far ('' before any)."""
    next_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """The ticket's next decision (None while this is its latest)."""


class ReportRollupRow(Base):
    """Per-day sums of the reports (`rulesvc.storage.report_rollups`, migration 0024): one row per `part`
    and group of one day (Asia/Shanghai) of decision time; which columns a part fills is said there."""

    __tablename__ = "report_rollups"
    __table_args__ = (
        Index("ix_report_rollups_day", "part", "day"),
        Index("ix_report_rollups_since", "part", "since_day"),
    )

    id: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    part: Mapped[str] = mapped_column(Text)
    since_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    """Of a superseded row (parts ending in `-`): the day of its own decision (`day` is its successor's)."""
    kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    occ_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    next_occ_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    auto_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    auto_occ_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    key_a: Mapped[str | None] = mapped_column(Text, nullable=True)
    key_b: Mapped[str | None] = mapped_column(Text, nullable=True)
    bin: Mapped[float | None] = mapped_column(Float, nullable=True)
    n: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[Decimal | None] = mapped_column(ExactNumber(), nullable=True)
    top: Mapped[float | None] = mapped_column(Float, nullable=True)


class ReportRollupDayRow(Base):
    """A day (Asia/Shanghai) whose roll-ups of `part` are stored (`report_rollups`)."""

    __tablename__ = "report_rollup_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    part: Mapped[str] = mapped_column(Text, primary_key=True)
