"""One ticket's timers in a unit of work: journal in event time, generations, next points, SLA figures,
retractions (pure)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rulesvc.model import Action, Decision, Event
from rulesvc.sla.calendar import always_open
from rulesvc.sla.calendar_file import load_calendar
from rulesvc.sla.outcomes import BREACHED, MET
from rulesvc.sla.ticket_timers import CORRECTED, ScheduledTimer, TicketTimers
from rulesvc.sla.timers import CANCELLED, DUE_POINT, PAUSED, RUNNING, TimerState

SH = ZoneInfo("Asia/Shanghai")
CN = load_calendar(Path(__file__).resolve().parents[3] / "rulesets" / "calendars" / "cn.yaml")
CALENDARS = {"cn": CN, "24x7": always_open()}
RULE = "complaint-sla/启动首次响应计时"
_ids = itertools.count()


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def decision(*actions: tuple[str, dict[str, Any]], etype: str = "ticket.updated") -> Decision:
    event = Event(f"e{next(_ids)}", etype, at(2026, 11, 2, 9), {"kind": "complaint", "id": "C-1"})
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
PAUSE = ("pause_timer", {"timer": "首次响应"})
RESUME = ("resume_timer", {"timer": "首次响应"})
NOW = at(2026, 11, 2, 9)


def fresh() -> TicketTimers:
    return TicketTimers("C-1", [], CALENDARS)


def started(when: datetime = NOW) -> TicketTimers:
    timers = fresh()
    timers.apply(decision(START, etype="ticket.created"), when, when)
    return timers


def again(timers: TicketTimers, now: datetime) -> TicketTimers:
    """The same ticket in the next unit of work, from what the store wrote."""
    return TicketTimers("C-1", timers.changes(now), CALENDARS, timers.timeline_json(now))


def fire_all(timers: TicketTimers, now: datetime) -> list[str]:
    fired = []
    while (reached := timers.next_due(now)) is not None:
        timers.fire(reached, f"d-{reached.point}")
        fired.append(reached.point)
    return fired


def test_start_schedules_the_warning_first() -> None:
    [timer] = started().changes(NOW)
    assert timer.generation == 1
    assert (timer.next_fire_at, timer.next_point) == (at(2026, 11, 2, 10, 30), "预警")
    assert timer.due_at == at(2026, 11, 2, 11)


def test_points_fire_in_order_and_the_deadline_records_a_breach() -> None:
    timers = again(started(), NOW)
    assert timers.next_due(at(2026, 11, 2, 10, 29)) is None
    reached = timers.next_due(at(2026, 11, 2, 12))
    assert reached is not None and (reached.at, reached.timer, reached.point) == (
        at(2026, 11, 2, 10, 30),
        "首次响应",
        "预警",
    )
    assert fire_all(timers, at(2026, 11, 2, 12)) == ["预警", DUE_POINT]
    assert timers.next_due(at(2026, 11, 3)) is None
    [figure] = timers.outcomes(at(2026, 11, 2, 12))
    assert (figure.outcome, figure.ruleset, figure.stopped_at) == (BREACHED, "complaint-sla", None)
    [stored] = timers.changes(at(2026, 11, 2, 12))
    assert stored.next_fire_at is None and stored.due_at is None


def test_accepted_in_time_is_met_with_the_time_left() -> None:
    timers = again(started(), NOW)
    ten = at(2026, 11, 2, 10)
    timers.apply(decision(CANCEL), ten, ten)
    [stored] = timers.changes(ten)
    assert stored.state.status == CANCELLED and stored.next_fire_at is None
    [figure] = timers.outcomes(ten)
    assert figure.outcome == MET and figure.remaining == timedelta(hours=1)


def test_late_acceptance_closes_the_breach_with_its_size() -> None:
    noon = at(2026, 11, 2, 12)
    timers = again(started(), NOW)
    fire_all(timers, noon)
    after_due = again(timers, noon)
    stop = at(2026, 11, 2, 11, 40)
    out = after_due.apply(decision(CANCEL), stop, noon)
    assert [a.type for a in out.actions] == ["cancel_timer"]  # closing a breach corrects nothing
    [figure] = after_due.outcomes(noon)
    assert figure.breach == timedelta(minutes=40) and figure.stopped_at == stop
    inserts, updates, deletes = after_due.sla_changes(noon)
    assert (inserts, deletes) == ([], []) and updates == [figure]
    third = again(after_due, noon)
    third.apply(decision(CANCEL), at(2026, 11, 2, 12), noon)
    assert third.sla_changes(noon) == ([], [], [])


def test_a_late_stop_before_the_points_retracts_them_and_corrects_the_figure() -> None:
    noon = at(2026, 11, 2, 12)
    timers = again(started(), NOW)
    assert fire_all(timers, noon) == ["预警", DUE_POINT]
    late = again(timers, noon)
    out = late.apply(decision(CANCEL), at(2026, 11, 2, 9, 10), noon)
    cancel, corrected = out.actions
    assert cancel.type == "cancel_timer" and corrected.type == CORRECTED
    assert [s["point"] for s in corrected.params["supersedes"]] == ["预警", DUE_POINT]
    assert corrected.params["supersedes"][0]["decision_id"] == "d-预警"
    [figures] = corrected.params["figures"]
    assert figures["was"]["outcome"] == BREACHED and figures["now"]["outcome"] == MET
    assert figures["now"]["remaining_seconds"] == 110 * 60
    [figure] = late.outcomes(noon)
    assert figure.outcome == MET and figure.remaining == timedelta(minutes=110)
    assert late.sla_changes(noon)[1] == [figure]


def test_resume_before_pause_in_arrival_is_the_same_timeline() -> None:
    now = at(2026, 11, 2, 9, 30)
    timers = again(started(), now)
    timers.apply(decision(RESUME), at(2026, 11, 2, 9, 20), now)
    timers = again(timers, now)
    timers.apply(decision(PAUSE), at(2026, 11, 2, 9, 10), now)
    state = timers.state("首次响应", now)
    assert state is not None and state.status == RUNNING
    assert state.due_at(CALENDARS["24x7"]) == at(2026, 11, 2, 11, 10)


def test_pause_and_resume_at_one_instant_is_a_pause_of_zero_length_in_either_order() -> None:
    instant, now = at(2026, 11, 2, 9, 20), at(2026, 11, 2, 9, 30)
    for order in ((RESUME, PAUSE), (PAUSE, RESUME)):
        timers = started()
        for action in order:
            timers.apply(decision(action), instant, now)
        state = timers.state("首次响应", now)
        assert state is not None and state.status == RUNNING
        assert state.due_at(CALENDARS["24x7"]) == at(2026, 11, 2, 11)


def test_pause_and_resume_move_every_point_and_resume_learns_its_due_at() -> None:
    timers = again(started(), NOW)
    timers.apply(decision(PAUSE), at(2026, 11, 2, 9, 30), at(2026, 11, 2, 9, 30))
    [paused] = timers.changes(at(2026, 11, 2, 9, 30))
    assert paused.state.status == PAUSED and paused.next_fire_at is None
    resumed = again(timers, at(2026, 11, 2, 12))
    out = resumed.apply(decision(RESUME), at(2026, 11, 2, 12), at(2026, 11, 2, 12))
    assert out.actions[0].params["due_at"] == at(2026, 11, 2, 13, 30)
    [timer] = resumed.changes(at(2026, 11, 2, 12))
    assert (timer.next_fire_at, timer.next_point) == (at(2026, 11, 2, 13), "预警")


def test_resume_of_a_fired_or_stopped_timer_is_not_emitted() -> None:
    noon = at(2026, 11, 2, 12)
    timers = again(started(), noon)
    fire_all(timers, noon)
    assert timers.apply(decision(RESUME), noon, noon).actions == ()
    stopped = started()
    stopped.apply(decision(CANCEL), at(2026, 11, 2, 10), at(2026, 11, 2, 10))
    assert stopped.apply(decision(RESUME), noon, noon).actions == ()
    running = started()  # a resume of a timer that is not paused changes nothing either
    assert running.apply(decision(RESUME), at(2026, 11, 2, 10), at(2026, 11, 2, 10)).actions == ()


def test_a_stop_of_a_timer_never_started_is_not_emitted_but_counts_once_it_is_started() -> None:
    timers = fresh()
    stop = decision(CANCEL, ("notify", {"to": "owner"}))
    out = timers.apply(stop, at(2026, 11, 2, 10), at(2026, 11, 2, 10))
    assert [a.type for a in out.actions] == ["notify"]
    timers.apply(decision(START, etype="ticket.created"), NOW, at(2026, 11, 2, 13))  # arrives later
    assert [(o.outcome, o.stopped_at) for o in timers.outcomes(at(2026, 11, 2, 13))] == [
        (MET, at(2026, 11, 2, 10))
    ]
    assert fire_all(timers, at(2026, 11, 2, 13)) == []


def test_a_second_stop_and_a_second_pause_are_not_emitted() -> None:
    timers = started()
    ten = at(2026, 11, 2, 10)
    assert [a.type for a in timers.apply(decision(PAUSE), ten, ten).actions] == ["pause_timer"]
    assert timers.apply(decision(PAUSE), ten + timedelta(minutes=1), ten).actions == ()
    assert [a.type for a in timers.apply(decision(CANCEL), ten, ten).actions] == ["cancel_timer"]
    assert timers.apply(decision(CANCEL), ten + timedelta(minutes=5), ten).actions == ()


def test_restart_is_a_new_generation_without_a_figure() -> None:
    timers = started()
    ten = at(2026, 11, 2, 10)
    timers.apply(decision(START), ten, ten)
    [timer] = timers.changes(ten)
    assert timer.generation == 2 and timer.state.started_at == ten
    assert timers.outcomes(ten) == []


def test_a_second_creation_starts_no_second_clock_in_either_order() -> None:
    now = at(2026, 11, 2, 13)
    first, second = at(2026, 11, 2, 9), at(2026, 11, 2, 9, 1)
    for order in ((first, second), (second, first)):
        timers = fresh()
        answers = [timers.apply(decision(START, etype="ticket.created"), when, now) for when in order]
        assert [len(a.actions) for a in answers] == ([1, 0] if order[0] == first else [1, 1])
        [timer] = timers.changes(now)
        assert timer.generation == 1 and timer.state.started_at == first
        assert fire_all(timers, now) == ["预警", DUE_POINT]


def test_working_hours_calendar_skips_nights_weekends_and_holidays() -> None:
    timers = fresh()
    start_loan = ("start_timer", {"timer": "信贷初审", "duration": "4h", "calendar": "cn"})
    timers.apply(decision(start_loan), at(2026, 9, 30, 16), at(2026, 9, 30, 16))  # then 国庆 Oct 1-7
    [timer] = timers.changes(at(2026, 9, 30, 16))
    assert timer.due_at == at(2026, 10, 8, 11)  # 2 h on Sep 30, 2 h on Oct 8 (first working day)


def test_non_timer_decisions_change_nothing() -> None:
    timers = again(started(), NOW)
    d = decision(("notify", {"to": "owner"}))
    assert timers.apply(d, at(2026, 11, 2, 10), at(2026, 11, 2, 10)) is d
    assert timers.changes(NOW) == [] and timers.sla_changes(NOW) == ([], [], [])


def test_timers_stored_without_a_journal_are_restored_from_their_rows() -> None:
    state = TimerState(
        "C-1",
        "首次响应",
        "24x7",
        NOW,
        timedelta(hours=2),
        (("预警", timedelta(minutes=90)),),
        anchor_at=NOW,
        fired=frozenset({"预警"}),
        rule=RULE,
    )
    stored = ScheduledTimer(state, 3, at(2026, 11, 2, 11), DUE_POINT, at(2026, 11, 2, 11))
    timers = TicketTimers("C-1", [stored], CALENDARS)
    noon = at(2026, 11, 2, 12)
    assert fire_all(timers, noon) == [DUE_POINT]
    [figure] = timers.outcomes(noon)
    assert figure.generation == 3 and figure.outcome == BREACHED
    assert timers.sla_changes(noon) == ([figure], [], [])


LOAN_START = ("start_timer", {"timer": "信贷初审", "duration": "4h", "calendar": "cn"})
LOAN_CANCEL = ("cancel_timer", {"timer": "信贷初审"})
ENTER = (("enter", "stage", "初审"),)
LEAVE = (("leave", "stage", "初审"),)


def stage_decision(event_id: str, stage: str, *actions: tuple[str, dict[str, Any], Any]) -> Decision:
    event = Event(event_id, "ticket.updated", NOW, {"kind": "loan", "id": "C-1", "stage": stage})
    return Decision(
        event, tuple(Action(t, p, "loan-sla/r", on=on) for t, p, on in actions), watched={"stage": stage}
    )


def test_actions_waiting_for_a_stage_change_stand_where_it_happens_in_any_arrival_order() -> None:
    """受理 at 9, 初审 at 10 (start), 复审 at 11 (stop), back to 初审 at 13 (start afresh): whatever order
    the four events arrive in, the first round is met at 11 and the second runs from 13."""
    history = [
        (at(2026, 11, 2, 9), stage_decision("e1", "受理", (*LOAN_CANCEL, LEAVE))),
        (at(2026, 11, 2, 10), stage_decision("e2", "初审", (*LOAN_START, ENTER), ("notify", {}, ENTER))),
        (at(2026, 11, 2, 11), stage_decision("e3", "复审", (*LOAN_CANCEL, LEAVE))),
        (at(2026, 11, 2, 13), stage_decision("e4", "初审", (*LOAN_START, ENTER))),
    ]
    now = at(2026, 11, 2, 14)
    for order in itertools.permutations(history):
        timers = fresh()
        answers = {d.event.event_id: timers.apply(d, when, now) for when, d in order}
        [timer] = timers.changes(now)
        assert (timer.generation, timer.state.started_at, timer.state.status) == (
            2,
            at(2026, 11, 2, 13),
            RUNNING,
        )
        [first] = timers.outcomes(now)
        assert (first.generation, first.outcome, first.stopped_at) == (1, MET, at(2026, 11, 2, 11))
        assert "notify" in [a.type for a in answers["e2"].actions]  # 初审 entered at 10 in every order
        assert all(a.type != "cancel_timer" for a in answers["e1"].actions)  # 受理 left nothing


def test_staying_in_the_stage_changes_nothing() -> None:
    timers = fresh()
    timers.apply(stage_decision("e1", "初审", (*LOAN_START, ENTER)), NOW, NOW)
    later = at(2026, 11, 2, 10)
    again_in = timers.apply(
        stage_decision("e2", "初审", (*LOAN_START, ENTER), ("notify", {}, ENTER)), later, later
    )
    assert again_in.actions == ()
    [timer] = timers.changes(later)
    assert (timer.generation, timer.state.started_at) == (1, NOW)
