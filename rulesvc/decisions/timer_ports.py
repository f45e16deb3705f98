"""What the timer store hands in and out (frozen records) and its port, `TimerStore`.

A *unit of work* on one ticket: the store locks the ticket, hands its `TicketView` to a pure callback that
decides what changes, and writes the returned `TicketWrite` (decisions, snapshot, timers, SLA figures) in
the same transaction. ORM rows never leave `rulesvc.storage`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rulesvc.decisions.ports import NewDecision, StoredDecision, TicketView, TicketWrite
from rulesvc.sla.reports import SlaRecord
from rulesvc.sla.ticket_timers import ScheduledTimer


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


@dataclass(frozen=True)
class ReplanBatch:
    """One re-plan claim: tickets locked, timers moved (feed rows), tickets refused for a seal mismatch."""

    tickets: int
    moved: int = 0
    refused: list[str] = field(default_factory=list)
    decisions: list[StoredDecision] = field(default_factory=list)


class ClaimPlan(Protocol):
    """What a re-plan claim makes of its locked tickets (`rulesvc.decisions.replan`)."""

    def timers(
        self, ticket_id: str, timers: Sequence[ScheduledTimer]
    ) -> tuple[list[ScheduledTimer], list[Mapping[str, Any]]] | None:
        """From the ticket's timer rows alone: the rows re-planned and a `reschedule_timer` action per
        moved deadline; None when the rows are not enough (the ticket's journal must be replayed)."""
        ...

    def again(self, ticket_id: str, actions: Sequence[Mapping[str, Any]]) -> None:
        """The ticket's timer rows are (but for their ids) those of a ticket `timers` planned before in this
        claim, and get its rows and `actions` (the store did not ask again: the plan is a function of the
        rows)."""
        ...

    def ticket(self, view: TicketView) -> tuple[TicketWrite, list[Mapping[str, Any]]]:
        """From the ticket's journal: what to store and the `reschedule_timer` actions."""
        ...

    def record(self, moves: Sequence[tuple[str, Mapping[str, Any]]], tickets: int) -> NewDecision:
        """The claim's one record: (ticket id, action) of every moved timer, of `tickets` re-planned."""
        ...


class TimerStore(Protocol):
    def fire_due(self, now: datetime, limit: int, prepare: FirePrepare) -> FiredBatch:
        """Lock up to `limit` tickets having a timer point due at `now` (skipping tickets other writers
        hold) and store `prepare(view)` for each, all in one transaction."""
        ...

    def replan(self, calendar: str, version: int, now: datetime, limit: int, plan: ClaimPlan) -> ReplanBatch:
        """Lock up to `limit` tickets having an open timer on `calendar` planned on a version before
        `version` (skipping tickets other writers hold, as `fire_due`), and store in one transaction what
        `plan` makes of them: their timer rows, one record for the claim, its feed rows, their seals."""
        ...

    def replan_pending(self, calendar: str, version: int) -> bool: ...

    def replan_count(self, calendar: str, version: int) -> int:
        """Open timers on `calendar` still planned on a version before `version`."""
        ...

    def pending_timers(self) -> int: ...

    def sla_records(self, start: datetime, end: datetime) -> Iterator[SlaRecord]: ...
