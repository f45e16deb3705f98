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
from rulesvc.sla.ticket_timers import SNAPSHOT_AT, TIMER_ACTIONS, TicketTimers


def assigned_group(decision: Decision) -> str | None:
    """The group of the decision's last `assign` action (the ticket's routing group for SLA reports)."""
    groups = [
        str(a.params["group"]) for a in decision.actions if a.type == "assign" and a.params.get("group")
    ]
    return groups[-1] if groups else None


def merged_snapshot(view: TicketView, event: Event) -> tuple[dict[str, Any], str]:
    """The ticket's latest snapshot in event time, and the `occurred_at` it is as of (ISO text, kept in the
    timeline as `snapshot_at`): an event that happened after it overwrites its fields, one that happened
    before (it arrived late) only fills fields the snapshot lacks. Timer points are fed this snapshot, so a
    rule reading `ticket.stage` at the deadline sees the stage the ticket is in, whatever the arrival order."""
    known = view.timeline.get(SNAPSHOT_AT)
    if known is not None and event.occurred_at < datetime.fromisoformat(str(known)):
        return {**event.ticket, **view.snapshot}, str(known)
    return {**view.snapshot, **event.ticket}, event.occurred_at.isoformat()


def touches_timers(decision: Decision) -> bool:
    """Whether storing `decision` goes through the ticket's timers: a timer action, or values of fields
    whose changes rules wait for (the journal keeps them; actions waiting for a change depend on them)."""
    return bool(decision.watched) or any(a.type in TIMER_ACTIONS for a in decision.actions)


@dataclass(frozen=True)
class EventTicketWork:
    event: Event
    decision: Decision
    calendars: Mapping[str, BusinessCalendar]
    record: Callable[[Decision], NewDecision]
    """Builds the stored record of a decision (called again only when timer actions were enriched)."""
    prepared: NewDecision

    def __call__(self, view: TicketView) -> TicketWrite:
        snapshot, snapshot_at = merged_snapshot(view, self.event)
        if not touches_timers(self.decision):
            moved = snapshot_at != view.timeline.get(SNAPSHOT_AT)
            return TicketWrite(
                decisions=[self.prepared],
                snapshot=snapshot,
                kind=self.event.kind,
                group=assigned_group(self.decision),
                timeline={**view.timeline, SNAPSHOT_AT: snapshot_at} if moved else None,
            )
        now = self.prepared.decided_at
        timers = TicketTimers(view.ticket_id, view.timers, self.calendars, view.timeline)
        timers.snapshot_at = snapshot_at
        enriched = timers.apply(self.decision, self.event.occurred_at, now)
        unchanged = (enriched.actions, enriched.fired) == (self.decision.actions, self.decision.fired)
        new = self.prepared if unchanged else self.record(enriched)
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
