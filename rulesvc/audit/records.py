"""Rows the chain vouches for, as the audit checks read them: the action feed and webhook bodies.

They live here, below every domain that writes or serves them (decisions, delivery, storage), so the audit
checks need no import from those domains."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FeedRecord:
    """One action of the feed as stored (its JSON text as written)."""

    cursor: int
    at: datetime
    ticket_id: str
    decision_id: str
    action_text: str


@dataclass(frozen=True)
class StoredDelivery:
    """One webhook delivery's body as stored."""

    delivery_id: str
    cursor: int
    body: str
