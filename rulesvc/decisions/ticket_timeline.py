"""A ticket's SLA timers as a timeline, read from the ticket's stored decisions (oldest first): each
timer's starts, its warning points and deadline as planned, which of them fired (and how late), pauses,
resumes, moves and the stop. Pure.

A `start_timer` action plans its points (`warnings[].at`, `due_at`; `provisional` when computed past the
calendar's confirmed coverage); a decision whose event is a timer firing (`event.timer`: name, point,
due_at, fire_at, late_by) fires the planned point of that name; `resume_timer` and `reschedule_timer` move
the deadline, and the warning points they list (`warnings[].at`: a resume lists its unfired ones); `cancel_timer` stops the timer (points not yet fired will not fire). A start of a running
timer replaces it: the points its previous generation had not fired are void.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rulesvc.opsstate import LATE_AFTER

DUE = "due"
PLANNED, FIRED, LATE, VOID = "planned", "fired", "late", "void"


@dataclass
class _Timer:
    name: str
    calendar: str = ""
    rule: str = ""
    generation: int = 0
    status: str = "running"
    marks: list[dict[str, Any]] = field(default_factory=list)
    points: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The current generation's planned points by name (`due` for the deadline)."""

    def close(self, state: str) -> None:
        for point in self.points.values():
            if point["state"] == PLANNED:
                point["state"] = state
        self.points = {}


def _when(record: Mapping[str, Any]) -> str:
    event = record.get("event") or {}
    return str(event.get("occurred_at") or record.get("decided_at") or "")


def ticket_timeline(
    records: Iterable[Mapping[str, Any]], ticket_id: str | None = None
) -> list[dict[str, Any]]:
    """`[{"timer", "calendar", "rule", "generations", "status", "marks": [...]}]`, timers by first start;
    marks in time order, each `{"at", "kind", "name", "state", "provisional", "fired_at", "late_by",
    "decision_id"}` (`kind`: started, warning, due, paused, resumed, rescheduled, cancelled; `state` of a
    point: planned, fired, late, void). Of a record for several tickets (a re-plan claim:
    `action_tickets`), only the actions for `ticket_id` count."""
    timers: dict[str, _Timer] = {}

    def timer(name: str) -> _Timer:
        return timers.setdefault(name, _Timer(name))

    for record in records:
        decision_id = str(record.get("decision_id", ""))
        fact = (record.get("event") or {}).get("timer")
        if isinstance(fact, Mapping) and fact.get("name"):
            _fire(timer(str(fact["name"])), fact, decision_id)
        for action in own_actions(record, ticket_id):
            if not isinstance(action, Mapping) or not action.get("timer"):
                continue
            kind = str(action.get("type", ""))
            at = str(action.get("occurred_at") or _when(record))
            t = timer(str(action["timer"]))
            mark = {"at": at, "name": "", "state": "", "provisional": False, "decision_id": decision_id}
            if kind == "start_timer":
                t.close(VOID)
                t.generation += 1
                t.status = "running"
                t.calendar = str(action.get("calendar", t.calendar))
                t.rule = str(action.get("rule", t.rule))
                t.marks.append({**mark, "at": str(action.get("started_at") or at), "kind": "started"})
                provisional = bool(action.get("provisional"))
                for warning in action.get("warnings") or ():
                    if isinstance(warning, Mapping) and warning.get("at"):
                        _plan(t, "warning", str(warning.get("name", "")), str(warning["at"]), provisional)
                if action.get("due_at"):
                    _plan(t, DUE, DUE, str(action["due_at"]), provisional)
            elif kind == "pause_timer":
                t.status = "paused"
                t.marks.append({**mark, "kind": "paused"})
            elif kind in ("resume_timer", "reschedule_timer"):
                t.status = "running" if kind == "resume_timer" else t.status
                label = "resumed" if kind == "resume_timer" else "rescheduled"
                t.marks.append({**mark, "kind": label, "name": str(action.get("due_at", ""))})
                provisional = bool(action.get("provisional"))
                due = t.points.get(DUE)
                if action.get("due_at") and due is not None and due["state"] == PLANNED:
                    due.update(at=str(action["due_at"]), provisional=provisional)
                for warning in action.get("warnings") or ():  # a resume's warning points, moved with it
                    point = (
                        t.points.get(str(warning.get("name", ""))) if isinstance(warning, Mapping) else None
                    )
                    if point is not None and point["state"] == PLANNED and warning.get("at"):
                        point.update(at=str(warning["at"]), provisional=provisional)
            elif kind == "cancel_timer":
                t.status = "cancelled"
                t.marks.append({**mark, "kind": "cancelled"})
                t.close(VOID)
    result = []
    for t in timers.values():
        if t.status == "running" and t.generation and not t.points:
            t.status = "finished"
        result.append(
            {
                "timer": t.name,
                "calendar": t.calendar,
                "rule": t.rule,
                "generations": t.generation,
                "status": t.status,
                "marks": sorted(t.marks, key=lambda m: _instant_key(m["at"])),
            }
        )
    return result


def own_actions(record: Mapping[str, Any], ticket_id: str | None) -> list[Any]:
    """The record's actions for `ticket_id`: all of them, or of a re-plan claim those naming it."""
    actions = list(record.get("actions") or ())
    tickets = record.get("action_tickets")
    if not isinstance(tickets, list):
        return actions
    return [a for t, a in zip(tickets, actions, strict=False) if t == ticket_id]


def _plan(t: _Timer, kind: str, name: str, at: str, provisional: bool) -> None:
    point = {
        "at": at,
        "kind": kind,
        "name": name,
        "state": PLANNED,
        "provisional": provisional,
        "fired_at": None,
        "late_by": None,
        "decision_id": "",
    }
    t.points[name] = point
    t.marks.append(point)


def _fire(t: _Timer, fact: Mapping[str, Any], decision_id: str) -> None:
    name = str(fact.get("point", ""))
    point = t.points.pop(name, None)
    if point is None:  # fired without a start this timeline knows of (e.g. older than the records read)
        kind = DUE if name == DUE else "warning"
        point = {"at": str(fact.get("due_at", "")), "kind": kind, "name": name, "provisional": False}
        t.marks.append(point)
    late_by = float(fact.get("late_by") or 0)
    point.update(
        state=LATE if late_by >= LATE_AFTER.total_seconds() else FIRED,
        fired_at=str(fact.get("fire_at", "")),
        late_by=late_by,
        decision_id=decision_id,
    )
    if name == DUE and not t.points:
        t.status = "finished"


def _instant_key(text: str) -> tuple[int, float]:
    try:
        return (0, datetime.fromisoformat(text).timestamp())
    except ValueError:
        return (1, 0.0)
