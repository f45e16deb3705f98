"""What the timer store hands in and out (frozen records) and its port, `TimerStore`.

A *unit of work* on one ticket: the store locks the ticket, hands its `TicketView` to a pure callback that
decides what changes, and writes the returned `TicketWrite` (decisions, snapshot, timers, SLA figures) in
the same transaction. ORM rows never leave `rulesvc.storage`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rulesvc.decisions.ports import StoredDecision, TicketView, TicketWrite
from rulesvc.sla.reports import SlaRecord


@dataclass(frozen=True)
class FiredBatch:
    """One claim: how many tickets were locked and the decisions their due points produced."""

    tickets: int
    decisions: list[StoredDecision] = field(default_factory=list)
    actions: int = 0
    writes: list[TicketWrite] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Tickets not fired because their stored state does not match the chain (`audit.evidence_mismatch`)."""


FirePrepare = Callable[[TicketView], TicketWrite]


class TimerStore(Protocol):
    def fire_due(self, now: datetime, limit: int, prepare: FirePrepare) -> FiredBatch:
        """Lock up to `limit` tickets having a timer point due at `now` (skipping tickets other writers
        hold) and store `prepare(view)` for each, all in one transaction."""
        ...

    def replan(
        self, calendar: str, version: int, now: datetime, limit: int, prepare: FirePrepare
    ) -> FiredBatch:
        """As `fire_due`, for tickets having an open timer on `calendar` planned on a version before
        `version` (claimed with the same locks, so a ticket is re-planned once by one writer)."""
        ...

    def replan_pending(self, calendar: str, version: int) -> bool: ...

    def pending_timers(self) -> int: ...

    def sla_records(self, start: datetime, end: datetime) -> Iterator[SlaRecord]: ...
