"""What the timer store hands in and out (frozen records) and its port, `TimerStore`.

A *unit of work* on one ticket: the store locks the ticket, hands its `TicketView` to a pure callback that
decides what changes, and writes the returned `TicketWrite` (decisions, snapshot, timers, SLA figures) in
the same transaction. ORM rows never leave `rulesvc.storage`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from rulesvc.decisions.ports import NewDecision, StoredDecision
from rulesvc.sla.outcomes import SlaOutcome
from rulesvc.sla.ticket_timers import ScheduledTimer


@dataclass(frozen=True)
class TicketView:
    """A locked ticket: its latest snapshot (`{}` if never seen), routing group and every timer."""

    ticket_id: str
    kind: str
    snapshot: Mapping[str, Any]
    group: str
    timers: tuple[ScheduledTimer, ...]
    timeline: Mapping[str, Any] = field(default_factory=dict)
    """The ticket's timer timeline as stored (`rulesvc.sla.ticket_timers.TicketTimers`); `{}` if none."""


@dataclass(frozen=True)
class TicketWrite:
    """Everything one unit of work on a ticket stores, atomically. None/empty = unchanged."""

    decisions: Sequence[NewDecision] = ()
    snapshot: Mapping[str, Any] | None = None
    kind: str | None = None
    group: str | None = None
    timers: Sequence[ScheduledTimer] = ()
    sla: Sequence[SlaOutcome] = ()
    """SLA figures new to the ticket."""
    sla_updates: Sequence[SlaOutcome] = ()
    """Stored SLA figures (same ticket, timer and generation) that changed."""
    sla_deletes: Sequence[tuple[str, int]] = ()
    """(timer, generation) of stored SLA figures that no longer exist."""
    timeline: Mapping[str, Any] | None = None
    late_by: Sequence[float] = ()
    """Seconds each fired timer point was late (not stored: the decisions carry it; for metrics)."""


@dataclass(frozen=True)
class FiredBatch:
    """One claim: how many tickets were locked and the decisions their due points produced."""

    tickets: int
    decisions: list[StoredDecision] = field(default_factory=list)
    actions: int = 0
    writes: list[TicketWrite] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Tickets not fired because their stored state does not match the chain (`audit.evidence_mismatch`)."""


@dataclass(frozen=True)
class SlaRecord:
    ticket_id: str
    kind: str
    timer: str
    ruleset: str
    rule: str
    calendar: str
    group: str
    started_at: datetime
    due_at: datetime
    outcome: str
    decided_at: datetime
    stopped_at: datetime | None
    remaining: timedelta
    breach: timedelta
    provisional: bool = False


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
