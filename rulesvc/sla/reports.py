"""SLA attainment reports: share of finished timers that met their deadline, per ruleset, group, period...

A timer counts in the period in which its outcome was decided: when it was stopped in time (met) or when its
deadline passed (breached). `breach` figures are how far past the deadline, in working time on the timer's
calendar: up to the stop for a stopped breach; for a breach still open (also counted in `open_breaches`), up
to the report's end (or now, if that is earlier).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rulesvc.errors import RulesvcError
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.outcomes import MET

DIMENSIONS = ("ruleset", "group", "timer", "kind", "calendar", "rule")
PERIODS = ("day", "week", "month")
GROUP_KEYS = DIMENSIONS + PERIODS
DEFAULT_TZ = "Asia/Shanghai"
MAX_RANGE = timedelta(days=3660)


class InvalidReportError(RulesvcError):
    code = "invalid_report"

    def __init__(self, message: str, path: str) -> None:
        self.path = path
        super().__init__(message)


@dataclass(frozen=True)
class SlaRecord:
    ticket_id: str
    kind: str
    timer: str
    ruleset: str
    rule: str
    calendar: str
    group: str
    started_at: datetime
    due_at: datetime
    outcome: str
    decided_at: datetime
    stopped_at: datetime | None
    remaining: timedelta
    breach: timedelta
    provisional: bool = False


class SlaSource(Protocol):
    def sla_records(self, start: datetime, end: datetime) -> Iterable[SlaRecord]: ...


def parse_group_by(text: str | None) -> tuple[str, ...]:
    """`"ruleset,month"` → ("ruleset", "month"); unknown keys raise InvalidReportError."""
    if not text:
        return ()
    keys = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [key for key in keys if key not in GROUP_KEYS]
    if unknown:
        raise InvalidReportError(
            f"group_by: 未知的分组 {', '.join(unknown)}（可用：{', '.join(GROUP_KEYS)}）", "group_by"
        )
    if len([key for key in keys if key in PERIODS]) > 1:
        raise InvalidReportError("group_by: 只能按一种周期分组（day、week 或 month）", "group_by")
    return tuple(dict.fromkeys(keys))


@dataclass
class _Bucket:
    total: int = 0
    met: int = 0
    breached: int = 0
    open_breaches: int = 0
    breach_sum: timedelta = timedelta(0)
    breach_max: timedelta = timedelta(0)
    sized_breaches: int = 0
    remaining_sum: timedelta = timedelta(0)
    provisional: int = 0

    def add(self, record: SlaRecord) -> None:
        self.total += 1
        self.provisional += record.provisional
        if record.outcome == MET:
            self.met += 1
            self.remaining_sum += record.remaining
            return
        self.breached += 1
        if record.stopped_at is None:
            self.open_breaches += 1
        self.sized_breaches += 1
        self.breach_sum += record.breach
        self.breach_max = max(self.breach_max, record.breach)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "met": self.met,
            "breached": self.breached,
            "attainment": round(self.met / self.total, 4) if self.total else None,
            "open_breaches": self.open_breaches,
            "avg_breach_seconds": _avg(self.breach_sum, self.sized_breaches),
            "max_breach_seconds": self.breach_max.total_seconds() if self.sized_breaches else None,
            "avg_remaining_seconds": _avg(self.remaining_sum, self.met),
            "provisional": self.provisional,
        }


def sla_report(
    source: SlaSource,
    start: datetime,
    end: datetime,
    group_by: Sequence[str] = (),
    tz: str = DEFAULT_TZ,
    calendars: Mapping[str, BusinessCalendar] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """`{"from", "to", "group_by", "timezone", "total": {...}, "groups": [{"key": {...}, ...}]}`.

    An open breach's size is measured up to min(`end`, `now`) on its calendar (`calendars`; without it,
    or for an unknown calendar, in wall-clock time)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidReportError("from/to 必须带时区偏移", "from")
    try:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
    except OverflowError:
        raise InvalidReportError("from/to 超出可表示的时间范围", "from") from None
    if end <= start:
        raise InvalidReportError("to 必须晚于 from", "to")
    if end - start > MAX_RANGE:
        raise InvalidReportError("报表区间最长 10 年", "to")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidReportError(f"tz: 未知时区 {tz!r}", "tz") from None
    total = _Bucket()
    groups: dict[tuple[str, ...], _Bucket] = {}
    until = min(end, now) if now is not None else end
    for record in source.sla_records(start, end):
        if record.outcome != MET and record.stopped_at is None:
            record = replace(record, breach=_overdue(record, until, calendars or {}))
        total.add(record)
        if group_by:
            key = tuple(_key_part(record, name, zone) for name in group_by)
            groups.setdefault(key, _Bucket()).add(record)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "group_by": list(group_by),
        "timezone": tz,
        "total": total.to_json(),
        "groups": [
            {"key": dict(zip(group_by, key, strict=True)), **bucket.to_json()}
            for key, bucket in sorted(groups.items())
        ],
    }


def _key_part(record: SlaRecord, name: str, zone: ZoneInfo) -> str:
    if name in PERIODS:
        local = record.decided_at.astimezone(zone)
        if name == "day":
            return local.date().isoformat()
        if name == "week":
            year, week, _ = local.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{local.year}-{local.month:02d}"
    return str(getattr(record, name))


def _overdue(record: SlaRecord, until: datetime, calendars: Mapping[str, BusinessCalendar]) -> timedelta:
    if until <= record.due_at:
        return timedelta(0)
    calendar = calendars.get(record.calendar)
    return calendar.working_time_between(record.due_at, until) if calendar else until - record.due_at


def _avg(total: timedelta, count: int) -> float | None:
    return round(total.total_seconds() / count, 3) if count else None
