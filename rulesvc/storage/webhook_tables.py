"""ORM tables of webhook delivery (subscriptions and per-action deliveries). Private to storage.

Created by migration `0003`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rulesvc.storage.tables import Base, Int64, UTCDateTime


class SubscriptionRow(Base):
    """`fanout_cursor`: the last action cursor turned into this subscription's deliveries."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(200))
    kinds: Mapped[str] = mapped_column(Text)
    action_types: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(400))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fanout_cursor: Mapped[int] = mapped_column(BigInteger)
    classes: Mapped[str] = mapped_column(Text, default='["公开","内部"]')
    """JSON list of the field classes its bodies carry in clear (migration 0016)."""
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Made inactive by an operator (the API), not by the settings: a worker start leaves it inactive
    (migration 0021)."""


class DeliveryRow(Base):
    """One action to one subscription. `status`: pending → delivered, or → dead after the last attempt.

    While pending, `next_attempt_at` is the earliest next try and doubles as the lease of a claimed attempt.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("delivery_id", name="uq_webhook_deliveries_delivery_id"),
        Index("ix_webhook_deliveries_order", "subscription_id", "ticket_id", "cursor"),
        Index(
            "ix_webhook_deliveries_pending",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_status", "subscription_id", "status"),
    )

    id: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(80))
    subscription_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    cursor: Mapped[int] = mapped_column(BigInteger)
    ticket_id: Mapped[str] = mapped_column(String(200))
    action_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
