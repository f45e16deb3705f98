"""Event time: a ticket's SLA timers are a pure function of its timer journal, ordered by `occurred_at`.

The journal holds, per decision that touched a timer, the timer actions it decided and the time they take
effect (the event's `occurred_at`, or the scheduled time of the timer point whose rules decided them).
`replay` folds the journal in the **event-time order** below, firing every timer point that falls between
two entries, and yields each timer's state, the points the timeline reaches and the SLA figures. Service
and simulation both call it, so they agree for the same events in any arrival order: an event that arrives
late is inserted at its place and the ticket's timeline is recomputed (as event-time stream processors do).

Event-time order (documented tie-break, independent of arrival order):
1. `occurred_at`;
2. at the same instant, decisions that start a timer first, then those that pause, then resume, then stop
   (`start_timer` < `pause_timer` < `resume_timer` < `cancel_timer`, by the decision's first-ranked action):
   a pause and a resume at one instant are a pause of zero length, a stop at the instant of the start meets
   the SLA with all its time left;
3. then by the event id (the decision's source), so twins at one instant always come in the same order;
   the actions of one decision keep their order.
A timer point at the instant of an event comes after the event (the ticket tool had already acted).

Repeated creation: only the first `ticket.created` of a ticket (in this order) applies its timer actions; a
later `ticket.created` with a new `event_id` is a re-send and starts no second clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from rulesvc.model import Action
from rulesvc.sla import outcomes
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.outcomes import SlaOutcome
from rulesvc.sla.timers import (
    DUE_POINT,
    FINISHED,
    PAUSED,
    RUNNING,
    TimerState,
    cancel,
    mark_fired,
    pause,
    resume,
    start_from_action,
)

CREATED = "ticket.created"
RESTORE = "restore"
"""A journal entry carrying a timer's stored state (timers written before the journal existed)."""
ACTION_RANK = {"start_timer": 0, "pause_timer": 1, "resume_timer": 2, "cancel_timer": 3}
TIMER_ACTIONS = frozenset(ACTION_RANK)
MAX_POINTS = 1000
"""Points one replay fires at most (guards against rules that restart timers forever)."""


@dataclass(frozen=True)
class JournalEntry:
    """The timer actions of one decision, effective at `at`. `restored` replaces the timer by a stored state."""

    at: datetime
    source: str
    event_type: str
    actions: tuple[Mapping[str, Any], ...] = ()
    restored: RestoredTimer | None = None
    answered: frozenset[int] | None = None
    """Indices of the actions a decision answered (and fed); None: all of them (journals written before)."""
    fields: Mapping[str, str] = field(default_factory=dict)
    """The event's values of the ticket fields whose changes rules wait for (`Decision.watched`)."""

    def unanswered(self, index: int) -> bool:
        return self.answered is not None and index not in self.answered

    def sort_key(self) -> tuple[datetime, int, str]:
        if self.restored is not None:
            return (self.at, -1, self.source)
        rank = min((ACTION_RANK.get(str(a.get("type")), 9) for a in self.actions), default=9)
        return (self.at, rank, self.source)


@dataclass(frozen=True)
class RestoredTimer:
    state: TimerState
    generation: int
    stopped_at: datetime | None


@dataclass(frozen=True)
class Reached:
    """A timer point the timeline reaches at `at`; `origin` is the source of the start it belongs to."""

    timer: str
    origin: str
    generation: int
    point: str
    at: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.timer, self.origin, self.point)


@dataclass(frozen=True)
class TimerRun:
    """One timer in a replay: its state, generation, the source of its start and when a breach was stopped."""

    state: TimerState
    generation: int
    origin: str
    stopped_at: datetime | None = None


@dataclass
class Replay:
    timers: dict[str, TimerRun] = field(default_factory=dict)
    reached: list[Reached] = field(default_factory=list)
    outcomes: dict[tuple[str, int], SlaOutcome] = field(default_factory=dict)
    """Each timer generation's figure, by (timer, generation)."""
    next_entry_at: datetime | None = None
    """The first journal entry after the horizon (it takes effect then: the ticket must be looked at again)."""
    changes: dict[str, frozenset[tuple[str, str, str]]] = field(default_factory=dict)
    """By source: the (enter|leave, field, value) changes of watched fields that happened at that entry
    in event time (a field's first value enters it)."""
    effective: set[tuple[str, int]] = field(default_factory=set)
    """(source, index) of the journal actions that changed a timer where they took effect in event time:
    a start that started one, a stop of a running, paused or still open breached timer, a pause of a
    running and a resume of a paused one. The others changed nothing and are not emitted."""


def replay(
    ticket_id: str,
    entries: Iterable[JournalEntry],
    calendars: Mapping[str, BusinessCalendar],
    horizon: datetime | None,
) -> Replay:
    """Fold `entries` in event-time order; points fire up to and including `horizon` (None: none after
    the last entry). An entry dated after the horizon (ahead of the clock, within the tolerated skew) is
    applied, but no point after the horizon fires before it: that happens when the horizon passes it
    (`next_entry_at` says when to look again)."""
    result = Replay()
    created_seen = False
    values: dict[str, str] = {}
    for entry in sorted(entries, key=JournalEntry.sort_key):
        if horizon is not None and entry.at > horizon:
            if result.next_entry_at is None:
                _advance(result, calendars, horizon, inclusive=True)
                result.next_entry_at = entry.at
        else:
            _advance(result, calendars, entry.at, inclusive=False)
        changed = _changes(values, entry.fields)
        if changed:
            result.changes[entry.source] = changed
        if entry.restored is not None:
            restore(result, entry, calendars)
        elif entry.event_type != CREATED or not created_seen:
            created_seen = created_seen or entry.event_type == CREATED
            for index, action in enumerate(entry.actions):
                waits = action.get("on")
                if waits and not any(tuple(w) in changed for w in waits):
                    continue  # the field change its rule waits for did not happen here in event time
                if _apply(result, ticket_id, entry, action, calendars):
                    result.effective.add((entry.source, index))
    if horizon is not None and result.next_entry_at is None:
        _advance(result, calendars, horizon, inclusive=True)
    return result


def _changes(values: dict[str, str], fields: Mapping[str, str]) -> frozenset[tuple[str, str, str]]:
    """Record `fields` into `values`; the enter/leave changes that makes."""
    changed: set[tuple[str, str, str]] = set()
    for name, value in fields.items():
        before = values.get(name)
        if before == value:
            continue
        if before is not None:
            changed.add(("leave", name, before))
        changed.add(("enter", name, value))
        values[name] = value
    return frozenset(changed)


def _advance(
    result: Replay, calendars: Mapping[str, BusinessCalendar], limit: datetime, inclusive: bool
) -> None:
    for _ in range(MAX_POINTS):
        best: tuple[datetime, bool, str, str] | None = None
        for name, run in result.timers.items():
            points = run.state.pending_points(calendars[run.state.calendar])
            if points:
                candidate = (points[0][0], points[0][1] == DUE_POINT, name, points[0][1])
                if best is None or candidate < best:
                    best = candidate
        if best is None or best[0] > limit or (best[0] == limit and not inclusive):
            return
        at, _, name, point = best
        run = result.timers[name]
        result.timers[name] = replace(run, state=mark_fired(run.state, point))
        result.reached.append(Reached(name, run.origin, run.generation, point, at))
        if point == DUE_POINT:
            provisional = calendars[run.state.calendar].is_provisional(at)
            result.outcomes[(name, run.generation)] = outcomes.breached(
                run.state, run.generation, at, provisional
            )


def _apply(
    result: Replay,
    ticket_id: str,
    entry: JournalEntry,
    action: Mapping[str, Any],
    calendars: Mapping[str, BusinessCalendar],
) -> bool:
    """Apply one timer action; whether it changed the timer (see `Replay.effective`)."""
    action_type = action.get("type")
    name = str(action.get("timer", ""))
    run = result.timers.get(name)
    at = entry.at
    if action_type == "start_timer":
        state = start_from_action(ticket_id, name, action, at)
        if state is None:
            return False
        result.timers[name] = TimerRun(state, (run.generation if run else 0) + 1, entry.source)
        return True
    if run is None:
        return False
    calendar = calendars[run.state.calendar]
    before = run.state
    if action_type == "cancel_timer":
        if before.status in (RUNNING, PAUSED):
            figure = outcomes.met(before, run.generation, at, calendar)
            if figure is not None:
                result.outcomes[(name, run.generation)] = figure
            result.timers[name] = replace(run, state=cancel(before))
            return True
        if before.status == FINISHED and DUE_POINT in before.fired and run.stopped_at is None:
            result.outcomes[(name, run.generation)] = outcomes.close_breach(
                before, run.generation, at, calendar
            )
            result.timers[name] = replace(run, stopped_at=at)
            return True
    elif action_type == "pause_timer" and before.status == RUNNING:
        result.timers[name] = replace(run, state=pause(before, at, calendar))
        return True
    elif action_type == "resume_timer" and before.status == PAUSED:
        result.timers[name] = replace(run, state=resume(before, at))
        return True
    return False


def restore(result: Replay, entry: JournalEntry, calendars: Mapping[str, BusinessCalendar]) -> None:
    """Apply a `RESTORE` entry: the stored timer as it was, its fired points reached, its figure recorded."""
    restored = entry.restored
    assert restored is not None
    state = restored.state
    result.timers[state.name] = TimerRun(state, restored.generation, entry.source, restored.stopped_at)
    calendar = calendars[state.calendar]
    for point in sorted(state.fired):
        result.reached.append(Reached(state.name, entry.source, restored.generation, point, entry.at))
    if state.status == FINISHED and DUE_POINT in state.fired:
        figure = (
            outcomes.close_breach(state, restored.generation, restored.stopped_at, calendar)
            if restored.stopped_at is not None
            else outcomes.breached(
                state,
                restored.generation,
                state.due_at(calendar),
                calendar.is_provisional(state.due_at(calendar)),
            )
        )
        result.outcomes[(state.name, restored.generation)] = figure


# -- JSON form (stored on the ticket row) ---------------------------------------------------------------------

US = timedelta(microseconds=1)


def entry_to_json(entry: JournalEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"at": entry.at.isoformat(), "source": entry.source, "type": entry.event_type}
    if entry.actions:
        data["actions"] = [dict(a) for a in entry.actions]
    if entry.answered is not None:
        data["answered"] = sorted(entry.answered)
    if entry.fields:
        data["fields"] = dict(entry.fields)
    if entry.restored is not None:
        data["timer"] = {
            **state_to_json(entry.restored.state),
            "generation": entry.restored.generation,
            "stopped_at": _iso(entry.restored.stopped_at),
        }
    return data


def entry_from_json(data: Mapping[str, Any]) -> JournalEntry:
    restored = None
    if "timer" in data:
        timer = data["timer"]
        stopped = timer.get("stopped_at")
        restored = RestoredTimer(
            state_from_json(timer),
            int(timer["generation"]),
            datetime.fromisoformat(stopped) if stopped else None,
        )
    return JournalEntry(
        datetime.fromisoformat(data["at"]),
        str(data["source"]),
        str(data["type"]),
        tuple(data.get("actions") or ()),
        restored,
        frozenset(int(i) for i in data["answered"]) if "answered" in data else None,
        {str(k): str(v) for k, v in (data.get("fields") or {}).items()},
    )


def state_to_json(state: TimerState) -> dict[str, Any]:
    return {
        "ticket_id": state.ticket_id,
        "name": state.name,
        "calendar": state.calendar,
        "started_at": state.started_at.isoformat(),
        "duration_us": state.duration // US,
        "warnings": [[name, offset // US] for name, offset in state.warnings],
        "anchor_at": state.anchor_at.isoformat(),
        "consumed_us": state.consumed // US,
        "status": state.status,
        "fired": sorted(state.fired),
        "rule": state.rule,
    }


def state_from_json(data: Mapping[str, Any]) -> TimerState:
    return TimerState(
        ticket_id=str(data["ticket_id"]),
        name=str(data["name"]),
        calendar=str(data["calendar"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        duration=int(data["duration_us"]) * US,
        warnings=tuple((str(name), int(us) * US) for name, us in data["warnings"]),
        anchor_at=datetime.fromisoformat(data["anchor_at"]),
        consumed=int(data["consumed_us"]) * US,
        status=str(data["status"]),
        fired=frozenset(data["fired"]),
        rule=str(data["rule"]),
    )


def outcome_to_json(outcome: SlaOutcome) -> dict[str, Any]:
    return {
        "outcome": outcome.outcome,
        "due_at": outcome.due_at.isoformat(),
        "decided_at": outcome.decided_at.isoformat(),
        "stopped_at": _iso(outcome.stopped_at),
        "remaining_us": outcome.remaining // US,
        "breach_us": outcome.breach // US,
        "started_at": outcome.started_at.isoformat(),
        "rule": outcome.rule,
        "calendar": outcome.calendar,
        "provisional": outcome.provisional,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def journal_of(actions: Sequence[Action]) -> tuple[Mapping[str, Any], ...]:
    """The timer actions of a decision, in order, as journaled (JSON; `on`: the field changes the action
    waits for, if any)."""
    return tuple(
        {**action.to_json(), **({"on": [list(w) for w in action.on]} if action.on else {})}
        for action in actions
        if action.type in TIMER_ACTIONS
    )
