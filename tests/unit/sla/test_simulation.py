"""Virtual-time simulation on the shipped rulesets: docs/domain.md timelines, pause/resume, ordering policy."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rulesvc.events import event_from_json, parse_time
from rulesvc.model import Event
from rulesvc.rulebook import RuleBook
from rulesvc.sla.simulation import Timeline, simulate

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"
T0 = "2026-11-02T09:00:00+08:00"


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return RuleBook.load([RULESETS])


def t(text: str) -> datetime:
    return parse_time(text, "test")


def after(hours: float, start: str = T0) -> datetime:
    return t(start) + timedelta(hours=hours)


def complaint(type: str, at: datetime | str, ticket_id: str = "C-1", **fields: Any) -> Event:
    at_text = at if isinstance(at, str) else at.isoformat()
    ticket = {"kind": "complaint", "id": ticket_id, "owner": "王五", "channel": "电话", **fields}
    return event_from_json(
        {"event_id": f"{ticket_id}/{type}/{at_text}", "type": type, "at": at_text, "ticket": ticket}
    )


def loan(type: str, at: str, ticket_id: str = "L-1", **fields: Any) -> Event:
    ticket = {
        "kind": "loan",
        "id": ticket_id,
        "region": "上海浦东",
        "amount": 3000000,
        "credit_rating": "AA",
        "owner": "张三",
        "stage": "初审",
        **fields,
    }
    return event_from_json({"event_id": f"{ticket_id}/{type}/{at}", "type": type, "at": at, "ticket": ticket})


def flat(timeline: Timeline) -> list[tuple[datetime, dict[str, Any]]]:
    """(time, action json) for every action, in timeline order."""
    return [(entry.at, action) for entry in timeline.entries for action in entry.decision.actions_json()]


def types_at(timeline: Timeline) -> list[tuple[datetime, str]]:
    return [(at, action["type"]) for at, action in flat(timeline)]


# ---- complaint first-response SLA (docs/domain.md scenario 4) ----------------------------------------------------


def test_complaint_never_accepted_notifies_at_1_5h_and_escalates_at_2h(book: RuleBook) -> None:
    timeline = simulate(book, [complaint("ticket.created", T0)], after(3))
    assert types_at(timeline) == [
        (after(0), "start_timer"),
        (after(1.5), "notify"),
        (after(2), "escalate"),
    ]
    start, notify, escalate = (action for _, action in flat(timeline))
    assert start["timer"] == "首次响应" and start["calendar"] == "24x7"
    assert t(start["due_at"]) == after(2)
    assert [(w["name"], t(w["at"])) for w in start["warnings"]] == [("预警", after(1.5))]
    assert notify["to"] == "owner"
    assert sorted(notify["channels"]) == sorted(["sms", "email", "in_app"])
    assert notify["message"] == "投诉 C-1 已 1.5 小时未受理，请在 30 分钟内首次响应"
    assert escalate["to"] == "supervisor"
    assert "C-1" in escalate["message"] and "王五" in escalate["message"]
    assert [entry.trigger for entry in timeline.entries] == [
        f"C-1/ticket.created/{T0}",
        "timer:C-1:首次响应:预警",
        "timer:C-1:首次响应:due",
    ]
    assert [f["rule"] for entry in timeline.entries for f in entry.decision.fired_json()] == [
        "启动首次响应计时",
        "投诉超时预警",
        "投诉超时升级",
    ]


def test_complaint_accepted_after_1h_only_cancels(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0), complaint("ticket.accepted", after(1))]
    timeline = simulate(book, events, after(6))
    assert types_at(timeline) == [(after(0), "start_timer"), (after(1), "cancel_timer")]
    assert [entry.at for entry in timeline.entries] == [after(0), after(1)]  # no timer entry afterwards


def test_complaint_accepted_between_warning_and_deadline(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0), complaint("ticket.accepted", after(1.75))]
    timeline = simulate(book, events, after(6))
    assert types_at(timeline) == [
        (after(0), "start_timer"),
        (after(1.5), "notify"),
        (after(1.75), "cancel_timer"),
    ]


def test_timer_actions_that_change_nothing_are_not_emitted(book: RuleBook) -> None:
    """A stop of a complaint never created, a second acceptance, a resume of a timer that already fired or
    was stopped: the rules fired, but no timer changed, so no timer action is in the timeline."""
    events = [
        complaint("ticket.accepted", T0, "C-9"),  # no timer was ever started for C-9
        complaint("ticket.created", T0),
        complaint("ticket.paused", after(3)),  # the deadline fired at 2 h
        complaint("ticket.resumed", after(4)),
        complaint("ticket.created", T0, "C-2"),
        complaint("ticket.accepted", after(1), "C-2"),
        complaint("ticket.accepted", after(1.5), "C-2"),
        complaint("ticket.resumed", after(2), "C-2"),
    ]
    timeline = simulate(book, events, after(6))
    timer_actions = [
        (entry.decision.event.ticket_id, at, a["type"])
        for entry in timeline.entries
        for at, a in [(entry.at, a) for a in entry.decision.actions_json()]
        if a["type"].endswith("_timer")
    ]
    assert timer_actions == [
        ("C-1", after(0), "start_timer"),
        ("C-2", after(0), "start_timer"),
        ("C-2", after(1), "cancel_timer"),
    ]
    fired = [
        f["rule"]
        for e in timeline.entries
        if e.decision.event.ticket_id == "C-9"
        for f in e.decision.fired_json()
    ]
    assert fired == ["受理停止计时"]  # the rule fired; its action changed nothing


def test_timer_points_after_until_do_not_fire(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0)]
    assert types_at(simulate(book, events, after(2) - timedelta(seconds=1)))[-1] == (after(1.5), "notify")


def test_timer_point_exactly_at_until_fires_when_a_later_event_is_pending(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0), complaint("ticket.accepted", after(4))]
    assert types_at(simulate(book, events, after(2)))[-1] == (after(2), "escalate")


def test_timer_point_exactly_at_until_fires(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0)]
    assert types_at(simulate(book, events, after(2)))[-1] == (after(2), "escalate")


def test_events_after_until_are_not_processed(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0), complaint("ticket.accepted", after(4))]
    assert [a for _, a in types_at(simulate(book, events, after(3)))] == ["start_timer", "notify", "escalate"]


# ---- loan first-review SLA on the cn calendar (docs/domain.md scenario 3) ------------------------------------------


def test_loan_created_wednesday_before_national_day_is_due_thursday_noon(book: RuleBook) -> None:
    created = "2026-09-30T17:00:00+08:00"
    due = t("2026-10-08T12:00:00+08:00")
    timeline = simulate(book, [loan("ticket.created", created)], t("2026-10-08T18:00:00+08:00"))
    by_time: dict[datetime, list[dict[str, Any]]] = {}
    for at, action in flat(timeline):
        by_time.setdefault(at, []).append(action)
    assert list(by_time) == [t(created), due]
    (start,) = [a for a in by_time[t(created)] if a["type"] == "start_timer"]
    assert start["timer"] == "信贷初审" and start["calendar"] == "cn"
    assert t(start["due_at"]) == due
    assert {a["type"] for a in by_time[t(created)]} == {"assign", "set_approval_level", "start_timer"}
    assert [(a["type"], a.get("to")) for a in by_time[due]] == [
        ("notify", "owner"),
        ("escalate", "supervisor"),
    ]
    assert sorted(by_time[due][0]["channels"]) == ["email", "in_app"]
    assert by_time[due][0]["message"] == "贷款 L-1 信贷初审已超过 4 个工作小时，请尽快完成"
    assert timeline.entries[-1].trigger == "timer:L-1:信贷初审:due"


def test_loan_friday_evening_is_due_on_the_saturday_make_up_day(book: RuleBook) -> None:
    timeline = simulate(
        book, [loan("ticket.created", "2026-10-09T17:00:00+08:00")], t("2026-10-12T18:00:00+08:00")
    )
    due = t("2026-10-10T12:00:00+08:00")
    assert [(at, a["type"]) for at, a in flat(timeline) if at != t("2026-10-09T17:00:00+08:00")] == [
        (due, "notify"),
        (due, "escalate"),
    ]


# ---- pause / resume ----------------------------------------------------------------------------------------


def test_pause_and_resume_move_the_complaint_deadline(book: RuleBook) -> None:
    events = [
        complaint("ticket.created", T0),
        complaint("ticket.paused", after(0.5)),
        complaint("ticket.resumed", after(1.5)),
    ]
    timeline = simulate(book, events, after(5))
    assert types_at(timeline) == [
        (after(0), "start_timer"),
        (after(0.5), "pause_timer"),
        (after(1.5), "resume_timer"),
        (after(2.5), "notify"),  # 1 h of warning time left at the pause → 1.5 h + 1 h
        (after(3), "escalate"),  # 1.5 h of deadline left → 1.5 h + 1.5 h
    ]
    resume = flat(timeline)[2][1]
    assert t(resume["due_at"]) == after(3)


def test_paused_timer_never_fires(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0), complaint("ticket.paused", after(0.25))]
    assert [a for _, a in types_at(simulate(book, events, after(48)))] == ["start_timer", "pause_timer"]


def test_pause_and_resume_move_the_loan_deadline_in_working_time(book: RuleBook) -> None:
    events = [
        loan("ticket.created", "2026-11-02T09:00:00+08:00"),
        loan("ticket.paused", "2026-11-02T10:00:00+08:00"),
        loan("ticket.resumed", "2026-11-03T10:00:00+08:00"),
    ]
    timeline = simulate(book, events, t("2026-11-03T18:00:00+08:00"))
    actions = flat(timeline)
    (start,) = [a for _, a in actions if a["type"] == "start_timer"]
    (resume,) = [a for _, a in actions if a["type"] == "resume_timer"]
    assert t(start["due_at"]) == t("2026-11-02T14:00:00+08:00")
    assert t(resume["due_at"]) == t("2026-11-03T14:00:00+08:00")
    escalations = [at for at, a in actions if a["type"] == "escalate"]
    assert escalations == [t("2026-11-03T14:00:00+08:00")]


# ---- ordering policy ---------------------------------------------------------------------------------------


def test_event_at_the_same_instant_as_a_warning_is_processed_first(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0), complaint("ticket.accepted", after(1.5))]
    timeline = simulate(book, events, after(4))
    assert types_at(timeline) == [(after(0), "start_timer"), (after(1.5), "cancel_timer")]


def test_event_at_the_same_instant_as_the_deadline_is_processed_first(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0), complaint("ticket.accepted", after(2))]
    timeline = simulate(book, events, after(4))
    assert types_at(timeline) == [
        (after(0), "start_timer"),
        (after(1.5), "notify"),
        (after(2), "cancel_timer"),
    ]
    assert timeline.entries[-1].trigger.startswith("C-1/ticket.accepted")


def test_timeline_is_in_time_order_across_tickets_and_unsorted_input(book: RuleBook) -> None:
    events = [
        complaint("ticket.accepted", after(1.75), "C-B"),
        complaint("ticket.created", after(0.5), "C-B"),
        complaint("ticket.created", T0, "C-A"),
        complaint("ticket.updated", after(0.5), "C-A"),
    ]
    timeline = simulate(book, events, after(4))
    times = [entry.at for entry in timeline.entries]
    assert times == sorted(times)
    heads = [
        (entry.at, entry.decision.event.ticket_id, entry.decision.event.type) for entry in timeline.entries
    ]
    assert heads[:3] == [
        (after(0), "C-A", "ticket.created"),
        (after(0.5), "C-B", "ticket.created"),  # same instant: input order among events
        (after(0.5), "C-A", "ticket.updated"),
    ]
    per_ticket = {
        ticket: [
            (entry.at, a["type"])
            for entry in timeline.entries
            for a in entry.decision.actions_json()
            if entry.decision.event.ticket_id == ticket
        ]
        for ticket in ("C-A", "C-B")
    }
    assert per_ticket["C-A"] == [(after(0), "start_timer"), (after(1.5), "notify"), (after(2), "escalate")]
    assert per_ticket["C-B"] == [(after(0.5), "start_timer"), (after(1.75), "cancel_timer")]


def test_later_events_carry_only_changed_fields(book: RuleBook) -> None:
    created = complaint("ticket.created", T0, owner="李四")
    update = event_from_json(
        {
            "event_id": "u",
            "type": "ticket.updated",
            "at": after(0.5).isoformat(),
            "ticket": {"kind": "complaint", "id": "C-1", "channel": "网点"},
        }
    )
    timeline = simulate(book, [created, update], after(3))
    escalate = flat(timeline)[-1][1]
    assert escalate["type"] == "escalate" and "李四" in escalate["message"]
    assert timeline.entries[-1].decision.event.ticket["channel"] == "网点"


def test_simulation_is_repeatable_and_json_serialisable(book: RuleBook) -> None:
    events = [complaint("ticket.created", T0), loan("ticket.created", "2026-09-30T17:00:00+08:00")]
    first = simulate(book, events, t("2026-10-08T18:00:00+08:00")).to_json()
    second = simulate(book, events, t("2026-10-08T18:00:00+08:00")).to_json()
    assert first == second
    assert list(first) == ["timeline"]
    assert {"at", "trigger", "ticket_id", "actions", "fired"} <= set(first["timeline"][0])
