"""SLA figures of finished timers: met or breached, and by how much (working time on the timer's calendar).

Pure. A timer's outcome is known when
- it is cancelled while running or paused (the ticket was handled in time): **met**, with the working time
  that was still left (`remaining`);
- its deadline fires: **breached**, decided at the deadline; the breach stays open until a later
  `cancel_timer` stops it, which closes it with `breach` = working time from the deadline to the stop.

A timer restarted while running is superseded and gets no figure (the newest start wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.timers import PAUSED, RUNNING, TimerState

MET = "met"
BREACHED = "breached"


@dataclass(frozen=True)
class SlaOutcome:
    """One timer generation's SLA figure. `closes_breach` marks an update of an open breach."""

    ticket_id: str
    timer: str
    generation: int
    ruleset: str
    rule: str
    calendar: str
    started_at: datetime
    due_at: datetime
    outcome: str
    decided_at: datetime
    stopped_at: datetime | None
    remaining: timedelta = timedelta(0)
    breach: timedelta = timedelta(0)
    closes_breach: bool = False
    provisional: bool = False
    """The deadline lay past its calendar's confirmed coverage (see `rulesvc.sla.coverage`)."""


def ruleset_of(rule: str) -> str:
    """`complaint-sla/启动首次响应计时` → `complaint-sla`."""
    return rule.split("/", 1)[0] if rule else ""


def remaining_at(state: TimerState, at: datetime, calendar: BusinessCalendar) -> timedelta:
    """Working time left on a running or paused timer at `at` (never negative)."""
    used = state.consumed
    if state.status == RUNNING and at > state.anchor_at:
        used += calendar.working_time_between(state.anchor_at, at)
    return max(timedelta(0), state.duration - used)


def met(state: TimerState, generation: int, at: datetime, calendar: BusinessCalendar) -> SlaOutcome | None:
    """The figure of a timer stopped at `at` before its deadline fired; None if it was not running."""
    if state.status not in (RUNNING, PAUSED):
        return None
    due_at = state.due_at(calendar)
    return _outcome(
        state,
        generation,
        due_at,
        MET,
        at,
        stopped_at=at,
        remaining=remaining_at(state, at, calendar),
        provisional=calendar.is_provisional(due_at),
    )


def _breach(state: TimerState, generation: int, due_at: datetime, **extra: Any) -> SlaOutcome:
    return _outcome(state, generation, due_at, BREACHED, due_at, **extra)


def _outcome(
    state: TimerState, generation: int, due_at: datetime, outcome: str, decided_at: datetime, **extra: Any
) -> SlaOutcome:
    return SlaOutcome(
        ticket_id=state.ticket_id,
        timer=state.name,
        generation=generation,
        ruleset=ruleset_of(state.rule),
        rule=state.rule,
        calendar=state.calendar,
        started_at=state.started_at,
        due_at=due_at,
        outcome=outcome,
        decided_at=decided_at,
        **extra,
    )


def breached(state: TimerState, generation: int, due_at: datetime, provisional: bool = False) -> SlaOutcome:
    """The figure recorded when the deadline fires; the breach is open (not stopped yet)."""
    return _breach(state, generation, due_at, stopped_at=None, provisional=provisional)


def close_breach(state: TimerState, generation: int, at: datetime, calendar: BusinessCalendar) -> SlaOutcome:
    """A late stop of a timer whose deadline already fired: how far past the deadline it was stopped."""
    due_at = state.due_at(calendar)
    breach = calendar.working_time_between(due_at, at) if at > due_at else timedelta(0)
    return _breach(
        state,
        generation,
        due_at,
        stopped_at=at,
        breach=breach,
        closes_breach=True,
        provisional=calendar.is_provisional(due_at),
    )
