"""What storing an event's decision does to its ticket, decided under the ticket's lock (pure).

`DecisionService.prepare_event` attaches an `EventTicketWork` to the decision it prepares; the store, in
the transaction that appends the decision and after locking the ticket, calls it with the ticket's current
timers and snapshot. It applies the decision's timer actions at the event's `occurred_at` (so pause and
resume move deadlines on each timer's calendar from the state actually stored), merges the event's ticket
fields into the latest snapshot, remembers the routing group, and returns the final record: the same
decision, whose `resume_timer` actions now carry their new `due_at`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rulesvc.decisions.ports import NewDecision, TicketView, TicketWrite
from rulesvc.model import Decision, Event
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.ticket_timers import TIMER_ACTIONS, TicketTimers


def assigned_group(decision: Decision) -> str | None:
    """The group of the decision's last `assign` action (the ticket's routing group for SLA reports)."""
    groups = [
        str(a.params["group"]) for a in decision.actions if a.type == "assign" and a.params.get("group")
    ]
    return groups[-1] if groups else None


@dataclass(frozen=True)
class EventTicketWork:
    event: Event
    decision: Decision
    calendars: Mapping[str, BusinessCalendar]
    record: Callable[[Decision], NewDecision]
    """Builds the stored record of a decision (called again only when timer actions were enriched)."""
    prepared: NewDecision

    def __call__(self, view: TicketView) -> TicketWrite:
        snapshot = {**view.snapshot, **self.event.ticket}
        if not any(a.type in TIMER_ACTIONS for a in self.decision.actions):
            return TicketWrite(
                decisions=[self.prepared],
                snapshot=snapshot,
                kind=self.event.kind,
                group=assigned_group(self.decision),
            )
        now = self.prepared.decided_at
        timers = TicketTimers(view.ticket_id, view.timers, self.calendars, view.timeline)
        enriched = timers.apply(self.decision, self.event.occurred_at, now)
        new = self.prepared if enriched.actions == self.decision.actions else self.record(enriched)
        return timer_write(
            timers, now, [new], snapshot=snapshot, kind=self.event.kind, group=assigned_group(enriched)
        )


def timer_write(
    timers: TicketTimers, now: datetime, decisions: list[NewDecision], **ticket: Any
) -> TicketWrite:
    """What a unit of work that went through `timers` stores: its decisions, the timers' stored form, the
    ticket's timeline and the SLA figures that changed."""
    inserts, updates, deletes = timers.sla_changes(now)
    return TicketWrite(
        decisions=decisions,
        timers=timers.changes(now),
        sla=inserts,
        sla_updates=updates,
        sla_deletes=deletes,
        timeline=timers.timeline_json(now),
        **ticket,
    )
