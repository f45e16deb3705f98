"""SLA timer state machine: pure transitions shared by virtual-time simulation and the durable scheduler.

A timer measures working time on its calendar. It is anchored at the instant its clock last (re)started and
remembers how much working time was consumed before that anchor, so pausing and resuming move every
remaining point exactly on the calendar:

    due_at = calendar.add_working_time(anchor_at, duration - consumed)

Warning points are offsets of working time from the start ("预警" after 90m); each point fires once.
Restarting a timer that already runs replaces it (documented policy: the newest start wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from rulesvc.durations import format_duration, parse_duration
from rulesvc.sla.calendar import BusinessCalendar

RUNNING = "running"
PAUSED = "paused"
CANCELLED = "cancelled"
FINISHED = "finished"
DUE_POINT = "due"


@dataclass(frozen=True)
class TimerState:
    ticket_id: str
    name: str
    calendar: str
    started_at: datetime
    duration: timedelta
    warnings: tuple[tuple[str, timedelta], ...]
    anchor_at: datetime
    consumed: timedelta = timedelta(0)
    status: str = RUNNING
    fired: frozenset[str] = frozenset()
    rule: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.ticket_id, self.name)

    def due_at(self, calendar: BusinessCalendar) -> datetime:
        return calendar.add_working_time(self.anchor_at, self.duration - self.consumed)

    def pending_points(self, calendar: BusinessCalendar) -> list[tuple[datetime, str]]:
        """Unfired points (time, name) of a running timer, in time order; empty when paused or stopped."""
        if self.status != RUNNING:
            return []
        points = [
            (calendar.add_working_time(self.anchor_at, offset - self.consumed), name)
            for name, offset in self.warnings
            if name not in self.fired and offset >= self.consumed
        ]
        if DUE_POINT not in self.fired:
            points.append((self.due_at(calendar), DUE_POINT))
        return sorted(points, key=lambda p: (p[0], p[1] == DUE_POINT))


def start(
    ticket_id: str,
    name: str,
    calendar: str,
    at: datetime,
    duration: timedelta,
    warnings: tuple[tuple[str, timedelta], ...],
    rule: str = "",
) -> TimerState:
    return TimerState(ticket_id, name, calendar, at, duration, warnings, anchor_at=at, rule=rule)


def pause(state: TimerState, at: datetime, calendar: BusinessCalendar) -> TimerState:
    if state.status != RUNNING:
        return state
    used = calendar.working_time_between(state.anchor_at, at) if at > state.anchor_at else timedelta(0)
    return replace(state, status=PAUSED, consumed=min(state.duration, state.consumed + used), anchor_at=at)


def resume(state: TimerState, at: datetime) -> TimerState:
    if state.status != PAUSED:
        return state
    return replace(state, status=RUNNING, anchor_at=at)


def resumed_warnings(state: TimerState, calendar: BusinessCalendar) -> list[dict[str, Any]]:
    """A resumed timer's warning points not yet fired, where they fall now (`[{name, after, at}]`, the
    shape of a start_timer's `warnings`): the remaining working time to each is kept, so they move with the
    deadline."""
    offsets = dict(state.warnings)
    return [
        {"name": name, "after": format_duration(offsets[name]), "at": at}
        for at, name in state.pending_points(calendar)
        if name != DUE_POINT and name in offsets
    ]


def cancel(state: TimerState) -> TimerState:
    if state.status in (CANCELLED, FINISHED):
        return state
    return replace(state, status=CANCELLED)


def mark_fired(state: TimerState, point: str) -> TimerState:
    fired = state.fired | {point}
    return replace(state, fired=fired, status=FINISHED if point == DUE_POINT else state.status)


def warning_offsets(action: Mapping[str, Any]) -> tuple[tuple[str, timedelta], ...]:
    """(name, offset) pairs of a start_timer action's `warnings` ([{"name", "after"}, ...])."""
    result = []
    for warning in action.get("warnings") or ():
        offset = parse_duration(warning.get("after"))
        if offset is not None:
            result.append((str(warning.get("name")), offset))
    return tuple(result)


def start_from_action(
    ticket_id: str, name: str, action: Mapping[str, Any], at: datetime
) -> TimerState | None:
    """The timer a (JSON) start_timer action starts at `at`; None when its duration cannot be read."""
    duration = parse_duration(action.get("duration"))
    if duration is None:
        return None
    return start(
        ticket_id,
        name,
        str(action.get("calendar")),
        at,
        duration,
        warning_offsets(action),
        str(action.get("rule", "")),
    )


def apply_action(
    timers: Mapping[tuple[str, str], TimerState],
    ticket_id: str,
    action: Mapping[str, Any],
    at: datetime,
    calendars: Mapping[str, BusinessCalendar],
) -> TimerState | None:
    """The new state of the timer a (JSON) action touches; None if it is not a timer action or a no-op.

    `at` is when the clock starts/stops: the triggering event's `occurred_at` (not its arrival time).
    """
    action_type = action.get("type")
    name = str(action.get("timer", ""))
    current = timers.get((ticket_id, name))
    if action_type == "start_timer":
        return start_from_action(ticket_id, name, action, at)
    if current is None:
        return None
    if action_type == "cancel_timer":
        return cancel(current)
    if action_type == "pause_timer":
        return pause(current, at, calendars[current.calendar])
    if action_type == "resume_timer":
        return resume(current, at)
    return None
