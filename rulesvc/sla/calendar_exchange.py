"""Calendars in and out of other formats: a calendar file rendered from a `BusinessCalendar`, and iCalendar
(RFC 5545, `.ics`, via the `icalendar` package) both ways.

An exported `.ics` has one all-day event per holiday (放假) and per make-up working day (调休上班), each with
its label as SUMMARY and `X-RULESVC-KIND: holiday|workday`, so it shows in Outlook or a phone calendar and
comes back unchanged. An imported `.ics` may come from elsewhere (e.g. a published holiday feed): an all-day
event is a holiday unless its `X-RULESVC-KIND` says `workday` or its summary says 上班/补班; multi-day events
cover every day up to their exclusive DTEND. Imported days are laid over a base calendar (its hours, zone and
coverage are kept): the result is a calendar file to push as a draft, never published directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from icalendar import Calendar, Event

from rulesvc.sla.calendar import BusinessCalendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY, WORKDAY = "holiday", "workday"
KIND = "X-RULESVC-KIND"
_WORK_WORDS = ("上班", "补班", "调休上班")


def _periods(periods: Iterable[tuple[time, time]]) -> str:
    def end(t: time) -> str:
        return "24:00" if t == time(0) else t.strftime("%H:%M")

    return "[" + ", ".join(f'"{s.strftime("%H:%M")}-{end(e)}"' for s, e in periods) + "]"


def render_calendar(calendar: BusinessCalendar, header: Iterable[str] = ()) -> str:
    """The calendar file (`rulesets/calendars/<name>.yaml` format) of `calendar`, days in date order."""
    lines = [f"# {line}" for line in header]
    lines += [f"name: {calendar.name}", f"timezone: {calendar.tz.key}"]
    if calendar.description:
        lines.append(f"description: {json.dumps(calendar.description, ensure_ascii=False)}")
    if calendar.confirmed_through is not None:
        lines.append(f"confirmed_through: {calendar.confirmed_through.isoformat()}")
    lines.append("weekly:")
    lines += [f"  {day}: {_periods(calendar.weekly.get(i, ()))}" for i, day in enumerate(WEEKDAYS)]
    if calendar.makeup_hours:
        lines.append(f"makeup_hours: {_periods(calendar.makeup_hours)}")
    for key, days in (("holidays", calendar.holidays), ("workdays", calendar.workdays)):
        lines.append(f"{key}:" if days else f"{key}: {{}}")
        for day in sorted(days):
            label = json.dumps(calendar.day_labels.get(day, ""), ensure_ascii=False)
            lines.append(f"  {day.isoformat()}: {label}  # {WEEKDAYS[day.weekday()]}")
    return "\n".join(lines) + "\n"


def to_ics(calendar: BusinessCalendar, version: int | None = None) -> bytes:
    """An iCalendar file with an all-day event per holiday and per make-up working day."""
    ics = Calendar()
    ics.add("prodid", "-//rulesvc//business calendar//ZH")
    ics.add("version", "2.0")
    ics.add("x-wr-calname", calendar.name if version is None else f"{calendar.name} v{version}")
    ics.add("x-wr-timezone", calendar.tz.key)
    days = [(d, HOLIDAY) for d in calendar.holidays] + [(d, WORKDAY) for d in calendar.workdays]
    for day, kind in sorted(days):
        label = calendar.day_labels.get(day, "")
        event = Event()
        event.add("uid", f"{calendar.name}-{day.isoformat()}-{kind}@rulesvc")
        event.add("dtstamp", datetime(2000, 1, 1, tzinfo=UTC))  # fixed: the same calendar, the same file
        event.add("dtstart", day)
        event.add("dtend", day + timedelta(days=1))
        event.add(
            "summary", (label or "放假") if kind == HOLIDAY else f"调休上班：{label}" if label else "调休上班"
        )
        event.add("transp", "TRANSPARENT" if kind == HOLIDAY else "OPAQUE")
        event.add(KIND, kind)
        ics.add_component(event)
    return bytes(ics.to_ical())


def ics_days(data: bytes) -> dict[date, tuple[str, str]]:
    """date → (holiday|workday, label) of every all-day event (ValueError for a file that is no iCalendar)."""
    try:
        ics = Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError and friends for malformed input
        raise ValueError(f"不是合法的 iCalendar 文件：{exc}") from exc
    found: dict[date, tuple[str, str]] = {}
    for event in ics.walk("VEVENT"):
        start = event.decoded("dtstart", None)
        if not isinstance(start, date) or isinstance(start, datetime):
            continue  # timed events are not days off
        end = event.decoded("dtend", None)
        last = end - timedelta(days=1) if isinstance(end, date) and end > start else start
        summary = str(event.get("summary", "")).strip()
        kind = str(event.get(KIND, "")).strip().lower()
        if kind not in (HOLIDAY, WORKDAY):
            kind = WORKDAY if any(word in summary for word in _WORK_WORDS) else HOLIDAY
        label = summary.removeprefix("调休上班：").removeprefix("调休上班") if kind == WORKDAY else summary
        day = start
        while day <= last:
            found[day] = (kind, label)
            day += timedelta(days=1)
    return found


def merge_ics(base: BusinessCalendar, data: bytes) -> BusinessCalendar:
    """`base` with the `.ics` file's days laid over it (a day listed there takes that kind and label)."""
    days = ics_days(data)
    holidays = {d for d in base.holidays if d not in days} | {d for d, (k, _) in days.items() if k == HOLIDAY}
    workdays = {d for d in base.workdays if d not in days} | {d for d, (k, _) in days.items() if k == WORKDAY}
    labels = {**base.day_labels, **{d: label for d, (_, label) in days.items()}}
    return replace(
        base, holidays=frozenset(holidays), workdays=frozenset(workdays), day_labels=labels, version=0
    )
