"""How far a business calendar's official schedule is confirmed, and what that means for deadlines.

A calendar may declare `confirmed_through: YYYY-MM-DD`. Past that day its statutory holidays still count but
make-up working days (调休) are unknown, so a deadline or warning point computed past it may still move:
it is *provisional*. Actions, stored timers and the SLA report say so; `rulesvc check`, `/readyz` and the
`rulesvc_calendar_coverage_days` gauge warn before the coverage runs out. Pure: `today` is always passed in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rulesvc.errors import Location, RulesetError
from rulesvc.sla.calendar import BusinessCalendar

WARN_WITHIN_DAYS = 60
"""`rulesvc check` warns when a calendar's confirmed coverage ends within this many days."""

TODAY_ENV = "RULESVC_TODAY"
"""Overrides today's date (YYYY-MM-DD) for coverage warnings: reproducible checks and examples."""


def provisional_fields(calendar: BusinessCalendar, points: Iterable[datetime]) -> dict[str, Any]:
    """`{"provisional": True, "calendar_version": v}` when any point lies past the confirmed coverage, else
    `{}` (confirmed points add nothing, so actions on fully confirmed calendars are unchanged)."""
    if any(calendar.is_provisional(point) for point in points):
        return {"provisional": True, "calendar_version": calendar.version}
    return {}


def days_left(calendar: BusinessCalendar, today: date) -> int | None:
    """Days from `today` to the last confirmed day (0 = today is the last one, negative = already past);
    None when the calendar declares no limit."""
    if calendar.confirmed_through is None:
        return None
    return (calendar.confirmed_through - today).days


def today_in(tz: str = "Asia/Shanghai", now: datetime | None = None) -> date:
    """Today's date in `tz` (the `RULESVC_TODAY` override first, then `now`, then the wall clock)."""
    override = os.environ.get(TODAY_ENV, "").strip()
    if override:
        return date.fromisoformat(override)
    moment = now if now is not None else datetime.now(ZoneInfo(tz))
    return moment.astimezone(ZoneInfo(tz)).date()


def coverage_warnings(
    calendars: Mapping[str, BusinessCalendar], today: date, within: int = WARN_WITHIN_DAYS
) -> list[RulesetError]:
    """A positioned warning per calendar whose confirmed coverage ends within `within` days (or has ended)."""
    warnings = []
    for name, calendar in sorted(calendars.items()):
        left = days_left(calendar, today)
        if left is None or left > within:
            continue
        through = calendar.confirmed_through
        assert through is not None
        state = f"已过期 {-left} 天" if left < 0 else f"还剩 {left} 天"
        warnings.append(
            RulesetError(
                "calendar.coverage_ending",
                f"警告：日历 {name} 的官方安排只确认到 {through.isoformat()}（{state}）；"
                "之后的截止时间只按法定节假日计算，标记为 provisional（暂定）",
                calendar.confirmed_location or Location(name),
                "国务院公布下一年放假安排后，更新日历（cn：运行 scripts/import_cn_calendar.py）并推进 confirmed_through",
            )
        )
    return warnings
