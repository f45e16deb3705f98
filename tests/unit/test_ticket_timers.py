"""One ticket's timers in a unit of work: generations, next points, SLA figures (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rulesvc.model import Action, Decision, Event
from rulesvc.sla.calendar import always_open, load_calendar
from rulesvc.sla.outcomes import BREACHED, MET
from rulesvc.sla.ticket_timers import ScheduledTimer, TicketTimers
from rulesvc.sla.timers import CANCELLED, DUE_POINT, PAUSED

SH = ZoneInfo("Asia/Shanghai")
CN = load_calendar(Path(__file__).resolve().parents[2] / "rulesets" / "calendars" / "cn.yaml")
CALENDARS = {"cn": CN, "24x7": always_open()}
RULE = "complaint-sla/启动首次响应计时"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def decision(*actions: tuple[str, dict[str, Any]], when: datetime | None = None) -> Decision:
    event = Event("e", "ticket.created", when or at(2026, 11, 2, 9), {"kind": "complaint", "id": "C-1"})
    return Decision(event, tuple(Action(t, p, RULE) for t, p in actions))


START = (
    "start_timer",
    {
        "timer": "首次响应",
        "duration": "2h",
        "calendar": "24x7",
        "warnings": [{"name": "预警", "after": "1h30m"}],
    },
)
CANCEL = ("cancel_timer", {"timer": "首次响应"})


def started(when: datetime = at(2026, 11, 2, 9)) -> list[ScheduledTimer]:
    timers = TicketTimers("C-1", [], CALENDARS)
    timers.apply(decision(START), when)
    return timers.changes()


def test_start_schedules_the_warning_first() -> None:
    [timer] = started()
    assert timer.generation == 1
    assert (timer.next_fire_at, timer.next_point) == (at(2026, 11, 2, 10, 30), "预警")
    assert timer.due_at == at(2026, 11, 2, 11)


def test_points_fire_in_order_and_the_deadline_records_a_breach() -> None:
    timers = TicketTimers("C-1", started(), CALENDARS)
    assert timers.next_due(at(2026, 11, 2, 10, 29)) is None
    assert timers.next_due(at(2026, 11, 2, 12)) == (at(2026, 11, 2, 10, 30), "首次响应", "预警")
    timers.fire("首次响应", "预警", at(2026, 11, 2, 10, 30))
    assert timers.next_due(at(2026, 11, 2, 12)) == (at(2026, 11, 2, 11), "首次响应", DUE_POINT)
    timers.fire("首次响应", DUE_POINT, at(2026, 11, 2, 11))
    assert timers.next_due(at(2026, 11, 3)) is None
    [figure] = timers.outcomes
    assert (figure.outcome, figure.ruleset, figure.stopped_at) == (BREACHED, "complaint-sla", None)
    [stored] = timers.changes()
    assert stored.next_fire_at is None and stored.due_at is None


def test_accepted_in_time_is_met_with_the_time_left() -> None:
    timers = TicketTimers("C-1", started(), CALENDARS)
    timers.apply(decision(CANCEL), at(2026, 11, 2, 10))
    [stored] = timers.changes()
    assert stored.state.status == CANCELLED and stored.next_fire_at is None
    [figure] = timers.outcomes
    assert figure.outcome == MET and figure.remaining == timedelta(hours=1)


def test_late_acceptance_closes_the_breach_with_its_size() -> None:
    timers = TicketTimers("C-1", started(), CALENDARS)
    timers.fire("首次响应", "预警", at(2026, 11, 2, 10, 30))
    timers.fire("首次响应", DUE_POINT, at(2026, 11, 2, 11))
    after_due = TicketTimers("C-1", timers.changes(), CALENDARS)
    after_due.apply(decision(CANCEL), at(2026, 11, 2, 11, 40))
    [figure] = after_due.outcomes
    assert figure.closes_breach and figure.breach == timedelta(minutes=40)
    again = TicketTimers("C-1", after_due.changes(), CALENDARS)
    again.apply(decision(CANCEL), at(2026, 11, 2, 12))
    assert again.outcomes == []


def test_pause_and_resume_move_every_point_and_resume_learns_its_due_at() -> None:
    timers = TicketTimers("C-1", started(), CALENDARS)
    timers.apply(decision(("pause_timer", {"timer": "首次响应"})), at(2026, 11, 2, 9, 30))
    [paused] = timers.changes()
    assert paused.state.status == PAUSED and paused.next_fire_at is None
    resumed = TicketTimers("C-1", [paused], CALENDARS)
    out = resumed.apply(decision(("resume_timer", {"timer": "首次响应"})), at(2026, 11, 2, 12))
    assert out.actions[0].params["due_at"] == at(2026, 11, 2, 13, 30)
    [timer] = resumed.changes()
    assert (timer.next_fire_at, timer.next_point) == (at(2026, 11, 2, 13), "预警")


def test_restart_is_a_new_generation_without_a_figure() -> None:
    timers = TicketTimers("C-1", started(), CALENDARS)
    timers.apply(decision(START), at(2026, 11, 2, 10))
    [timer] = timers.changes()
    assert timer.generation == 2 and timer.state.started_at == at(2026, 11, 2, 10)
    assert timers.outcomes == []


def test_working_hours_calendar_skips_nights_weekends_and_holidays() -> None:
    timers = TicketTimers("C-1", [], CALENDARS)
    start_loan = ("start_timer", {"timer": "信贷初审", "duration": "4h", "calendar": "cn"})
    timers.apply(decision(start_loan), at(2026, 9, 30, 16))  # Wed 16:00, then 国庆 Oct 1-7
    [timer] = timers.changes()
    assert timer.due_at == at(2026, 10, 8, 11)  # 2 h on Sep 30, 2 h on Oct 8 (first working day)


def test_non_timer_decisions_change_nothing() -> None:
    timers = TicketTimers("C-1", started(), CALENDARS)
    d = decision(("notify", {"to": "owner"}))
    assert timers.apply(d, at(2026, 11, 2, 10)) is d
    assert timers.changes() == [] and timers.outcomes == []
