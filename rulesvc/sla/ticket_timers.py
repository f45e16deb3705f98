"""One ticket's SLA timers during one unit of work (an event, or a poll firing due points).

Pure: the caller loads the ticket's timers, applies a decision's timer actions or fires due points here, and
writes back `changes()` and `outcomes` in the same transaction as the decision. Transitions are those of
`rulesvc.sla.timers` (applied through `rulesvc.simulation.apply_timer_actions`, so the durable scheduler and
the virtual-time simulation move deadlines identically); this module adds what durability needs: the
generation of each timer (a restart is a new generation), the next point to fire and the SLA figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from rulesvc.model import Decision
from rulesvc.simulation import apply_timer_actions
from rulesvc.sla import outcomes
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.outcomes import SlaOutcome
from rulesvc.sla.timers import DUE_POINT, FINISHED, PAUSED, RUNNING, TimerState, mark_fired

TIMER_ACTIONS = frozenset({"start_timer", "cancel_timer", "pause_timer", "resume_timer"})


@dataclass(frozen=True)
class ScheduledTimer:
    """A timer as stored: its state, generation and the next point the scheduler must fire.

    `next_fire_at`/`next_point` are None unless the timer runs; `due_at` is the deadline of a running timer;
    `stopped_at` is set once a breached timer was stopped (its breach is closed). `provisional` is true when a
    pending point lies past the calendar's confirmed coverage; `calendar_version` is the calendar version
    its points were computed on.
    """

    state: TimerState
    generation: int
    next_fire_at: datetime | None = None
    next_point: str | None = None
    due_at: datetime | None = None
    stopped_at: datetime | None = None
    provisional: bool = False
    calendar_version: int | None = None

    @property
    def name(self) -> str:
        return self.state.name


def schedule(
    state: TimerState, generation: int, calendar: BusinessCalendar, stopped_at: datetime | None = None
) -> ScheduledTimer:
    """The stored form of `state`, with its next point computed on its calendar."""
    points = state.pending_points(calendar)
    next_at, next_point = points[0] if points else (None, None)
    due_at = state.due_at(calendar) if state.status == RUNNING else None
    provisional = any(calendar.is_provisional(at) for at, _ in points)
    return ScheduledTimer(
        state, generation, next_at, next_point, due_at, stopped_at, provisional, calendar.version
    )


class TicketTimers:
    """A working copy of one ticket's timers; records every change and SLA figure it makes."""

    def __init__(
        self,
        ticket_id: str,
        timers: Iterable[ScheduledTimer],
        calendars: Mapping[str, BusinessCalendar],
    ) -> None:
        self.ticket_id = ticket_id
        self._calendars = calendars
        self._states: dict[tuple[str, str], TimerState] = {}
        self._generations: dict[str, int] = {}
        self._stopped: dict[str, datetime | None] = {}
        for timer in timers:
            self._states[(ticket_id, timer.name)] = timer.state
            self._generations[timer.name] = timer.generation
            self._stopped[timer.name] = timer.stopped_at
        self._changed: set[str] = set()
        self.outcomes: list[SlaOutcome] = []

    def state(self, name: str) -> TimerState | None:
        return self._states.get((self.ticket_id, name))

    def generation(self, name: str) -> int:
        return self._generations.get(name, 0)

    def apply(self, decision: Decision, at: datetime) -> Decision:
        """Apply the decision's timer actions at `at` (the clock starts/stops then); resume actions learn
        their new `due_at`. Returns the decision with those enriched actions."""
        if not any(action.type in TIMER_ACTIONS for action in decision.actions):
            return decision
        if decision.event.ticket_id != self.ticket_id:
            raise ValueError(
                f"decision for ticket {decision.event.ticket_id!r} applied to {self.ticket_id!r}"
            )
        enriched = []
        for action in decision.actions:
            if action.type not in TIMER_ACTIONS:
                enriched.append(action)
                continue
            name = str(action.params.get("timer", ""))
            before = self.state(name)
            single = apply_timer_actions(
                self._states, replace(decision, actions=(action,)), at, self._calendars
            )
            enriched.append(single.actions[0])
            after = self.state(name)
            if action.type == "start_timer" and after is not None and after is not before:
                self._generations[name] = self.generation(name) + 1
                self._stopped[name] = None
                self._changed.add(name)
            elif action.type == "cancel_timer" and before is not None:
                self._record_stop(before, at)
            if after is not before and after != before:
                self._changed.add(name)
        return replace(decision, actions=tuple(enriched))

    def _record_stop(self, before: TimerState, at: datetime) -> None:
        calendar = self._calendars[before.calendar]
        generation = self.generation(before.name)
        if before.status in (RUNNING, PAUSED):
            figure = outcomes.met(before, generation, at, calendar)
            if figure is not None:
                self.outcomes.append(figure)
        elif (
            before.status == FINISHED and DUE_POINT in before.fired and self._stopped.get(before.name) is None
        ):
            self.outcomes.append(outcomes.close_breach(before, generation, at, calendar))
            self._stopped[before.name] = at
            self._changed.add(before.name)

    def next_due(self, now: datetime) -> tuple[datetime, str, str] | None:
        """The earliest unfired point at or before `now`: (its time, timer name, point name)."""
        best: tuple[datetime, bool, str, str] | None = None
        for (_, name), state in self._states.items():
            points = state.pending_points(self._calendars[state.calendar])
            if points and points[0][0] <= now:
                at, point = points[0]
                candidate = (at, point == DUE_POINT, name, point)
                if best is None or candidate < best:
                    best = candidate
        return None if best is None else (best[0], best[2], best[3])

    def fire(self, name: str, point: str, point_at: datetime) -> TimerState:
        """Mark `point` of timer `name` fired (the deadline records a breach); returns the state it fired in."""
        key = (self.ticket_id, name)
        state = self._states[key]
        self._states[key] = mark_fired(state, point)
        self._changed.add(name)
        if point == DUE_POINT:
            provisional = self._calendars[state.calendar].is_provisional(point_at)
            self.outcomes.append(outcomes.breached(state, self.generation(name), point_at, provisional))
        return state

    def changes(self) -> list[ScheduledTimer]:
        """Every timer this unit of work changed, in its stored form."""
        result = []
        for name in sorted(self._changed):
            state = self._states[(self.ticket_id, name)]
            calendar = self._calendars[state.calendar]
            result.append(schedule(state, self.generation(name), calendar, self._stopped.get(name)))
        return result
