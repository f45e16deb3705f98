"""Virtual-time simulation: events plus every timer point due up to `until`, in time order, no side effects.

Policy when an event and a timer point fall on the same instant: the event is processed first (the ticket
tool had already acted by then), so a complaint accepted exactly at +1.5 h gets no warning.
Later events may carry only the changed ticket fields; they are merged into the ticket's last snapshot.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from rulesvc.model import TIMER_DUE, TIMER_WARNING, Action, Decision, Event, TimerInfo, to_jsonable
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.coverage import provisional_fields
from rulesvc.sla.timers import DUE_POINT, TimerState, apply_action, mark_fired


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


@dataclass
class Timeline:
    entries: list[TimelineEntry] = field(default_factory=list)
    timers: dict[tuple[str, str], TimerState] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"timeline": [entry.to_json() for entry in self.entries]}


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


def apply_timer_actions(
    timers: dict[tuple[str, str], TimerState],
    decision: Decision,
    at: datetime,
    calendars: Mapping[str, BusinessCalendar],
) -> Decision:
    """Apply a decision's timer actions to `timers`; resume actions learn their new `due_at`."""
    ticket_id = decision.event.ticket_id
    actions: list[Action] = []
    for action in decision.actions:
        new_state = apply_action(timers, ticket_id, action.to_json(), at, calendars)
        if new_state is not None:
            timers[new_state.key] = new_state
            if action.type == "resume_timer":
                calendar = calendars[new_state.calendar]
                due = new_state.due_at(calendar)
                extra = provisional_fields(calendar, [due])
                action = replace(action, params={**action.params, "due_at": due, **extra})
        actions.append(action)
    return replace(decision, actions=tuple(actions))


def simulate(book: Evaluator, events: Sequence[Event], until: datetime) -> Timeline:
    """Run `events` and every timer point due at or before `until`; nothing is stored or sent."""
    timeline = Timeline()
    snapshots: dict[str, dict[str, Any]] = {}
    queue = sorted(enumerate(events), key=lambda item: (item[1].occurred_at, item[0]))
    pending = [event for _, event in queue]
    position = 0
    while True:
        next_event = pending[position] if position < len(pending) else None
        next_point = _next_point(timeline.timers, book.calendars)
        before_next_event = next_event is None or (
            next_point is not None and next_point[0] < next_event.occurred_at
        )
        if next_point is not None and before_next_event and next_point[0] <= until:
            at, state, point = next_point
            due = state.due_at(book.calendars[state.calendar])
            event = timer_event(
                state, point, at, due if point == DUE_POINT else at, snapshots[state.ticket_id]
            )
            timeline.timers[state.key] = mark_fired(state, point)
            trigger = event.event_id
        elif next_event is not None and next_event.occurred_at <= until:
            position += 1
            merged = {**snapshots.get(next_event.ticket_id, {}), **next_event.ticket}
            snapshots[next_event.ticket_id] = merged
            event = replace(next_event, ticket=merged)
            at, trigger = event.occurred_at, event.event_id
        else:
            break
        decision = apply_timer_actions(timeline.timers, book.evaluate(event), at, book.calendars)
        timeline.entries.append(TimelineEntry(at, trigger, decision))
    return timeline


def _next_point(
    timers: Mapping[tuple[str, str], TimerState], calendars: Mapping[str, BusinessCalendar]
) -> tuple[datetime, TimerState, str] | None:
    candidates: list[tuple[datetime, tuple[str, str], str]] = []
    for key, state in timers.items():
        points = state.pending_points(calendars[state.calendar])
        if points:
            heapq.heappush(candidates, (points[0][0], key, points[0][1]))
    if not candidates:
        return None
    at, key, point = candidates[0]
    return at, timers[key], point
