"""A ticket's timers read from its decisions: planned points, fired and late ones, pauses, moves, stops,
a restart voiding the previous generation's unfired points, provisional points."""

from __future__ import annotations

from typing import Any

from rulesvc.decisions.ticket_timeline import ticket_timeline


def start(decision_id: str, at: str, due: str, warn: str, provisional: bool = False) -> dict[str, Any]:
    action = {
        "type": "start_timer",
        "timer": "首次响应",
        "calendar": "24x7",
        "started_at": at,
        "due_at": due,
        "warnings": [{"name": "预警", "after": "1h30m", "at": warn}],
        "rule": "complaint-sla/启动首次响应计时",
    }
    if provisional:
        action["provisional"] = True
    return {"decision_id": decision_id, "event": {"occurred_at": at}, "actions": [action]}


def fire(decision_id: str, point: str, due: str, fire_at: str, late_by: float) -> dict[str, Any]:
    timer = {"name": "首次响应", "point": point, "due_at": due, "fire_at": fire_at, "late_by": late_by}
    return {"decision_id": decision_id, "event": {"occurred_at": fire_at, "timer": timer}, "actions": []}


def marks(timeline: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(m["kind"], m["name"], m["state"]) for m in timeline[0]["marks"]]


def test_points_fire_on_time_or_late_and_the_timer_finishes() -> None:
    records = [
        start("d1", "2026-11-02T09:00:00+08:00", "2026-11-02T11:00:00+08:00", "2026-11-02T10:30:00+08:00"),
        fire("d2", "预警", "2026-11-02T10:30:00+08:00", "2026-11-02T10:30:05+08:00", 5.0),
        fire("d3", "due", "2026-11-02T11:00:00+08:00", "2026-11-02T11:10:00+08:00", 600.0),
    ]
    [timer] = ticket_timeline(records)
    assert timer["status"] == "finished" and timer["generations"] == 1 and timer["calendar"] == "24x7"
    assert marks([timer]) == [("started", "", ""), ("warning", "预警", "fired"), ("due", "due", "late")]
    due = timer["marks"][2]
    assert (due["late_by"], due["decision_id"], due["fired_at"]) == (600.0, "d3", "2026-11-02T11:10:00+08:00")


def test_a_stop_voids_the_points_left_and_a_restart_voids_the_previous_generation() -> None:
    cancel = {
        "decision_id": "d3",
        "event": {"occurred_at": "2026-11-02T12:10:00+08:00"},
        "actions": [{"type": "cancel_timer", "timer": "首次响应"}],
    }
    records = [
        start("d1", "2026-11-02T09:00:00+08:00", "2026-11-02T11:00:00+08:00", "2026-11-02T10:30:00+08:00"),
        start(
            "d2", "2026-11-02T10:00:00+08:00", "2026-11-02T12:00:00+08:00", "2026-11-02T11:30:00+08:00", True
        ),
        cancel,
    ]
    [timer] = ticket_timeline(records)
    assert timer["status"] == "cancelled" and timer["generations"] == 2
    states = [(m["kind"], m["at"][11:16], m["state"], m["provisional"]) for m in timer["marks"]]
    assert states == [
        ("started", "09:00", "", False),
        ("started", "10:00", "", False),
        ("warning", "10:30", "void", False),
        ("due", "11:00", "void", False),
        ("warning", "11:30", "void", True),
        ("due", "12:00", "void", True),
        ("cancelled", "12:10", "", False),
    ]


def test_pause_and_resume_move_the_deadline() -> None:
    records = [
        start("d1", "2026-11-02T09:00:00+08:00", "2026-11-02T11:00:00+08:00", "2026-11-02T10:30:00+08:00"),
        {
            "decision_id": "d2",
            "event": {"occurred_at": "2026-11-02T09:30:00+08:00"},
            "actions": [{"type": "pause_timer", "timer": "首次响应"}],
        },
        {
            "decision_id": "d3",
            "event": {"occurred_at": "2026-11-02T10:00:00+08:00"},
            "actions": [{"type": "resume_timer", "timer": "首次响应", "due_at": "2026-11-02T11:30:00+08:00"}],
        },
    ]
    [timer] = ticket_timeline(records)
    assert timer["status"] == "running"
    kinds = [(m["kind"], m["at"][11:16]) for m in timer["marks"]]
    assert kinds == [
        ("started", "09:00"),
        ("paused", "09:30"),
        ("resumed", "10:00"),
        ("warning", "10:30"),
        ("due", "11:30"),
    ]
    assert ticket_timeline([]) == []


def test_a_resume_moves_the_warning_points_it_lists_with_the_deadline() -> None:
    """A resume_timer lists its unfired warning points where they fall now: the 预警 point moves from 10:30
    to 11:00 with the deadline (11:00 → 11:30) after a 30-minute pause; a fired point stays where it fired."""
    resume = {
        "type": "resume_timer",
        "timer": "首次响应",
        "due_at": "2026-11-02T11:30:00+08:00",
        "warnings": [{"name": "预警", "after": "1h30m", "at": "2026-11-02T11:00:00+08:00"}],
    }
    records = [
        start("d1", "2026-11-02T09:00:00+08:00", "2026-11-02T11:00:00+08:00", "2026-11-02T10:30:00+08:00"),
        {
            "decision_id": "d2",
            "event": {"occurred_at": "2026-11-02T09:30:00+08:00"},
            "actions": [{"type": "pause_timer", "timer": "首次响应"}],
        },
        {"decision_id": "d3", "event": {"occurred_at": "2026-11-02T10:00:00+08:00"}, "actions": [resume]},
        fire("d4", "预警", "2026-11-02T11:00:00+08:00", "2026-11-02T11:00:02+08:00", 2.0),
    ]
    [timer] = ticket_timeline(records)
    kinds = [(m["kind"], m["at"][11:16], m["state"]) for m in timer["marks"]]
    assert kinds == [
        ("started", "09:00", ""),
        ("paused", "09:30", ""),
        ("resumed", "10:00", ""),
        ("warning", "11:00", "fired"),
        ("due", "11:30", "planned"),
    ]
