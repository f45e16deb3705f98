"""Calendars as a lifecycle artifact type: a draft is the calendar file (positioned errors as `rulesvc
check` gives them, the file's `name:` must be the calendar's), tested by running every compliance case
on the rulesets in force with the draft calendar in place, and diffed day by day for the approver
(`2027-02-07 (sun): 调休上班 added（春节调休）`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from rulesvc.errors import RulesetError
from rulesvc.lifecycle.artifacts import DiffSide, text_diff
from rulesvc.lifecycle.gate import GateRun, Scenario, corpus, load_corpus, run_gate
from rulesvc.lifecycle.ports import KIND_CALENDAR, VersionRecord
from rulesvc.lifecycle.registry import BookRegistry
from rulesvc.lifecycle.timeline import DRAFT_VERSION, content_hash
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.coverage import coverage_warnings, today_in

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
HOLIDAY, WORKDAY = "放假", "调休上班"


class CalendarArtifact:
    kind = KIND_CALENDAR
    label = "日历"
    has_cases = False

    def __init__(
        self,
        registry: BookRegistry,
        shipped_cases: Mapping[str, str],
        now: Callable[[], datetime],
        engine_lock: threading.Lock | None = None,
    ) -> None:
        self.registry = registry
        self.factory = registry.factory
        self.shipped_cases = dict(shipped_cases)
        self._now = now
        self._engine_lock = engine_lock

    def check(self, name: str, text: str) -> tuple[str | None, list[RulesetError]]:
        calendar, errors = self.factory.parse_calendar(name, text)
        return (content_hash(text) if calendar is not None else None), errors

    def calendar(self, name: str, text: str, version: int = DRAFT_VERSION) -> BusinessCalendar:
        calendar, errors = self.factory.parse_calendar(name, text, version)
        if calendar is None:
            raise ValueError("; ".join(str(e) for e in errors))
        return calendar

    def test(
        self, name: str, text: str, cases: Mapping[str, str], versions: Sequence[VersionRecord]
    ) -> dict[str, Any]:
        """Every case of the rulesets in force, run with the draft in place of the calendar; the coverage
        warning `rulesvc check` would give (confirmed schedule ending within 60 days) is shown too."""
        now = self._now()
        draft = self.calendar(name, text)
        timeline = self.registry.timeline
        chosen = timeline.in_force(now)
        book = self.factory.book(
            {n: self.factory.stored(r) for n, r in chosen.items()},
            {**timeline.at(now).calendars, name: draft},
        )
        files = corpus(self.shipped_cases, chosen.values())
        loaded, errors = load_corpus(files, self.factory.kinds)
        run = GateRun(Scenario("现行版本", now, chosen), book, [] if errors else loaded, files)
        tests, _ = run_gate([run], self._engine_lock)
        warnings = [
            {"kind": "coverage", "message": f"{w.location}: {w.message}", "hint": w.hint}
            for w in coverage_warnings({name: draft}, today_in(draft.tz.key, now))
        ]
        return {**tests, "gaps": [], "warnings": warnings}

    def diff(self, name: str, old: DiffSide | None, new: DiffSide) -> dict[str, Any]:
        new_calendar = self.calendar(name, new.content, new.version or DRAFT_VERSION)
        old_calendar = self.calendar(name, old.content, old.version or DRAFT_VERSION) if old else None
        changes = calendar_changes(old_calendar, new_calendar)
        old_label = old.label if old else "（无）"
        return {
            "calendar": name,
            "added": [c["summary"] for c in changes if c["change"] == "added"],
            "removed": [c["summary"] for c in changes if c["change"] == "removed"],
            "changed": changes,
            "summary": [c["summary"] for c in changes],
            "text": text_diff(
                old.content if old else "",
                new.content,
                f"{name}.yaml ({old_label})",
                f"{name}.yaml ({new.label})",
            ),
            "cases": [],
            "cases_text": "",
        }


def _day(day: date) -> str:
    return f"{day.isoformat()}（{_WEEKDAYS_ZH[day.weekday()]}）"


def _periods(periods: Sequence[tuple[time, time]]) -> str:
    def end(t: time) -> str:
        return "24:00" if t == time(0) else t.strftime("%H:%M")

    return ", ".join(f"{s.strftime('%H:%M')}-{end(e)}" for s, e in periods) or "休息"


def _labelled(calendar: BusinessCalendar | None, which: str) -> dict[date, str]:
    if calendar is None:
        return {}
    days = calendar.holidays if which == HOLIDAY else calendar.workdays
    return {d: calendar.day_labels.get(d, "") for d in days}


def calendar_changes(old: BusinessCalendar | None, new: BusinessCalendar) -> list[dict[str, Any]]:
    """Each change, in date order for days: a holiday or make-up day added, removed or relabelled, then the
    weekly hours, make-up hours, time zone and confirmed coverage. `summary` is the line people read."""
    changes: list[dict[str, Any]] = []
    for which in (HOLIDAY, WORKDAY):
        before, after = _labelled(old, which), _labelled(new, which)
        for day in sorted(set(before) | set(after)):
            label = after.get(day, before.get(day, ""))
            note = f"（{label}）" if label else ""
            if day not in before:
                change, text = "added", f"{_day(day)}：新增 {which}{note}"
            elif day not in after:
                change, text = "removed", f"{_day(day)}：删除 {which}{note}"
            elif before[day] != after[day]:
                change, text = "relabelled", f"{_day(day)}：{which} {before[day]} → {after[day]}"
            else:
                continue
            changes.append(
                {"change": change, "kind": which, "date": day.isoformat(), "label": label, "summary": text}
            )
    changes.sort(key=lambda c: (c["date"], c["kind"]))
    for index, weekday in enumerate(WEEKDAYS):
        was = _periods(old.weekly.get(index, ())) if old else None
        now = _periods(new.weekly.get(index, ()))
        if was != now and old is not None:
            changes.append(_field(f"weekly.{weekday}", was, now))
    fields: list[tuple[str, Any, Any]] = [
        ("makeup_hours", _periods(old.makeup_hours) if old else None, _periods(new.makeup_hours)),
        ("timezone", old.tz.key if old else None, new.tz.key),
        (
            "confirmed_through",
            str(old.confirmed_through) if old and old.confirmed_through else None,
            str(new.confirmed_through) if new.confirmed_through else None,
        ),
    ]
    for what, was, now in fields:
        if was != now and old is not None:
            changes.append(_field(what, was, now))
    return changes


def _field(what: str, old: Any, new: Any) -> dict[str, Any]:
    return {
        "change": "changed",
        "what": what,
        "old": old,
        "new": new,
        "summary": f"{what}: {old if old is not None else '（无）'} → {new if new is not None else '（无）'}",
    }
