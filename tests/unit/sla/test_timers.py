"""The pure SLA-timer state machine on real calendars."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rulesvc.sla.calendar import always_open
from rulesvc.sla.calendar_file import load_calendar
from rulesvc.sla.timers import (
    CANCELLED,
    DUE_POINT,
    FINISHED,
    PAUSED,
    RUNNING,
    apply_action,
    mark_fired,
    start,
)

SH = ZoneInfo("Asia/Shanghai")
CN = load_calendar(Path(__file__).resolve().parents[3] / "rulesets" / "calendars" / "cn.yaml")
H24 = always_open()
CALENDARS = {"cn": CN, "24x7": H24}


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_points_in_order_with_warning_first() -> None:
    timer = start(
        "C-1", "首次响应", "24x7", at(2026, 11, 2, 9), timedelta(hours=2), (("预警", timedelta(minutes=90)),)
    )
    assert timer.pending_points(H24) == [(at(2026, 11, 2, 10, 30), "预警"), (at(2026, 11, 2, 11), DUE_POINT)]
    warned = mark_fired(timer, "预警")
    assert warned.status == RUNNING and warned.pending_points(H24) == [(at(2026, 11, 2, 11), DUE_POINT)]
    done = mark_fired(warned, DUE_POINT)
    assert done.status == FINISHED and done.pending_points(H24) == []


def test_pause_keeps_remaining_working_time_and_resume_moves_points() -> None:
    timers = {}
    action = {"type": "start_timer", "timer": "信贷初审", "duration": "4h", "calendar": "cn", "warnings": []}
    created = apply_action(timers, "L-1", action, at(2026, 11, 2, 9), CALENDARS)
    assert created is not None and created.due_at(CN) == at(2026, 11, 2, 14)
    timers[created.key] = created
    # paused at 10:00 after one working hour; resumed next day 09:00 with 3 h left
    paused = apply_action(
        timers, "L-1", {"type": "pause_timer", "timer": "信贷初审"}, at(2026, 11, 2, 10), CALENDARS
    )
    assert paused is not None and paused.status == PAUSED and paused.consumed == timedelta(hours=1)
    assert paused.pending_points(CN) == []
    timers[paused.key] = paused
    resumed = apply_action(
        timers, "L-1", {"type": "resume_timer", "timer": "信贷初审"}, at(2026, 11, 3, 9), CALENDARS
    )
    assert resumed is not None and resumed.status == RUNNING
    # 3 working hours from Tue 09:00: 09-12 → due 12:00 exactly at the lunch break
    assert resumed.due_at(CN) == at(2026, 11, 3, 12)


def test_cancel_stops_for_good_and_unknown_timer_is_a_no_op() -> None:
    timers = {}
    action = {"type": "start_timer", "timer": "T", "duration": "1h", "calendar": "24x7"}
    timer = apply_action(timers, "X", action, at(2026, 11, 2, 9), CALENDARS)
    assert timer is not None
    timers[timer.key] = timer
    cancelled = apply_action(
        timers, "X", {"type": "cancel_timer", "timer": "T"}, at(2026, 11, 2, 9, 30), CALENDARS
    )
    assert cancelled is not None and cancelled.status == CANCELLED and cancelled.pending_points(H24) == []
    assert (
        apply_action(timers, "Y", {"type": "cancel_timer", "timer": "T"}, at(2026, 11, 2, 9), CALENDARS)
        is None
    )
    assert apply_action(timers, "X", {"type": "notify"}, at(2026, 11, 2, 9), CALENDARS) is None


def test_paused_during_warning_window_shifts_warning_too() -> None:
    timers = {}
    action = {
        "type": "start_timer",
        "timer": "首次响应",
        "duration": "2h",
        "calendar": "24x7",
        "warnings": [{"name": "预警", "after": "90m"}],
    }
    timer = apply_action(timers, "C", action, at(2026, 11, 2, 9), CALENDARS)
    assert timer is not None
    timers[timer.key] = timer
    paused = apply_action(
        timers, "C", {"type": "pause_timer", "timer": "首次响应"}, at(2026, 11, 2, 10), CALENDARS
    )
    assert paused is not None
    timers[paused.key] = paused
    resumed = apply_action(
        timers, "C", {"type": "resume_timer", "timer": "首次响应"}, at(2026, 11, 2, 11), CALENDARS
    )
    assert resumed is not None
    assert resumed.pending_points(H24) == [
        (at(2026, 11, 2, 11, 30), "预警"),
        (at(2026, 11, 2, 12), DUE_POINT),
    ]
