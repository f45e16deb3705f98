"""Virtual-time simulation: events plus every timer point due up to `until`, in time order, no side effects.

Policy when an event and a timer point fall on the same instant: the event is processed first (the ticket
tool had already acted by then), so a complaint accepted exactly at +1.5 h gets no warning.
Later events may carry only the changed ticket fields; they are merged into the ticket's last snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from rulesvc.errors import RuleRuntimeError
from rulesvc.model import TIMER_DUE, TIMER_WARNING, Decision, Event, TimerInfo, to_jsonable
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.event_time import Reached
from rulesvc.sla.outcomes import SlaOutcome
from rulesvc.sla.ticket_timers import TicketTimers
from rulesvc.sla.timers import DUE_POINT, TimerState


class Evaluator(Protocol):
    calendars: Mapping[str, BusinessCalendar]

    def evaluate(self, event: Event) -> Decision: ...


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    trigger: str
    decision: Decision

    def to_json(self) -> dict[str, Any]:
        return {
            "at": to_jsonable(self.at),
            "trigger": self.trigger,
            "ticket_id": self.decision.event.ticket_id,
            "actions": self.decision.actions_json(),
            "fired": self.decision.fired_json(),
        }


@dataclass(frozen=True)
class TimelineError:
    """The rule error that stopped a simulation, and the trigger it was deciding."""

    at: datetime
    trigger: str
    error: RuleRuntimeError

    def to_json(self) -> dict[str, Any]:
        return {
            "at": to_jsonable(self.at),
            "trigger": self.trigger,
            "code": self.error.code,
            "message": self.error.message,
            **self.error.to_json(),
        }


@dataclass
class Timeline:
    entries: list[TimelineEntry] = field(default_factory=list)
    tickets: dict[str, TicketTimers] = field(default_factory=dict)
    until: datetime | None = None
    error: TimelineError | None = None  # a rule failed: the timeline stops before that trigger

    @property
    def timers(self) -> dict[tuple[str, str], TimerState]:
        """Every timer's state at `until`, by (ticket, timer)."""
        return {
            (ticket_id, name): run.state
            for ticket_id, timers in self.tickets.items()
            for name, run in timers.replay(self.until).timers.items()
        }

    def outcomes(self) -> list[SlaOutcome]:
        """The SLA figures at `until`."""
        return [o for timers in self.tickets.values() for o in timers.outcomes(self.until)]

    def to_json(self) -> dict[str, Any]:
        timeline: dict[str, Any] = {"timeline": [entry.to_json() for entry in self.entries]}
        if self.error is not None:
            timeline["error"] = self.error.to_json()
        return timeline


def timer_trigger(ticket_id: str, name: str, point: str) -> str:
    return f"timer:{ticket_id}:{name}:{point}"


def timer_event(
    state: TimerState, point: str, at: datetime, due_at: datetime, ticket: Mapping[str, Any]
) -> Event:
    """The event a timer point feeds into the engine (with the ticket's latest snapshot)."""
    return Event(
        event_id=timer_trigger(state.ticket_id, state.name, point),
        type=TIMER_DUE if point == DUE_POINT else TIMER_WARNING,
        occurred_at=at,
        ticket=ticket,
        timer=TimerInfo(name=state.name, point=point, due_at=due_at, fire_at=at, late_by=at - due_at),
    )


def simulate(book: Evaluator, events: Sequence[Event], until: datetime) -> Timeline:
    """Run `events` and every timer point due at or before `until`; nothing is stored or sent.

    Each ticket's timers go through `TicketTimers`, as in the service: the same event-time journal and
    replay, points fired in time order on the virtual clock. A rule error (`RuleRuntimeError`) stops the
    run: the timeline keeps every entry before it and records the error (`Timeline.error`)."""
    timeline = Timeline()
    snapshots: dict[str, dict[str, Any]] = {}
    pending = sorted(events, key=lambda event: event.occurred_at)
    position = 0
    while True:
        next_event = pending[position] if position < len(pending) else None
        next_point = _next_point(timeline.tickets, until)
        if next_point is not None and (next_event is None or next_point[0].at < next_event.occurred_at):
            reached, timers = next_point
            at = reached.at
            state = timers.state(reached.timer, until)
            assert state is not None
            event = timer_event(state, reached.point, at, at, snapshots[timers.ticket_id])
            timers.fire(reached, event.event_id)
            trigger = event.event_id
        elif next_event is not None and next_event.occurred_at <= until:
            position += 1
            merged = {**snapshots.get(next_event.ticket_id, {}), **next_event.ticket}
            snapshots[next_event.ticket_id] = merged
            event = replace(next_event, ticket=merged)
            at, trigger = event.occurred_at, event.event_id
            timers = timeline.tickets.setdefault(
                event.ticket_id, TicketTimers(event.ticket_id, (), book.calendars)
            )
        else:
            break
        try:
            decided = book.evaluate(event)
        except RuleRuntimeError as error:
            timeline.error = TimelineError(at, trigger, error)
            break
        decision = timers.apply(decided, at, at)
        timeline.entries.append(TimelineEntry(at, trigger, decision))
    timeline.until = until
    return timeline


def _next_point(tickets: Mapping[str, TicketTimers], until: datetime) -> tuple[Reached, TicketTimers] | None:
    best: tuple[tuple[datetime, bool, str, str], Reached, TicketTimers] | None = None
    for ticket_id, timers in tickets.items():
        reached = timers.next_due(until)
        if reached is not None:
            key = (reached.at, reached.point == DUE_POINT, ticket_id, reached.timer)
            if best is None or key < best[0]:
                best = (key, reached, timers)
    return None if best is None else (best[1], best[2])
