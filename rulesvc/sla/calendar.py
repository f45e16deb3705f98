"""Business calendars: when is it working time, and what instant is N working hours after T.

Pure functions of (calendar, instants): no wall clock, no I/O except `load_calendar(s)`.

Model
-----
A calendar has a time zone and, per weekday, working periods given as wall-clock times `[start, end)`.
A holiday removes every period of its day; a make-up working day (调休) is worked with `makeup_hours`
whatever its weekday. `time(0)` as a period *end* means 24:00 (the end of the day), so a 24×7 day is
`(time(0), time(0))`.

Working periods are wall-clock times in the calendar's zone; durations inside a period are real elapsed
time. On a DST change day in e.g. Europe/Berlin, `00:00-24:00` is 23 or 25 hours long. Wall times that do
not exist (the spring-forward gap) mean the instant the clock jumps; ambiguous ones (the repeated hour)
mean their first occurrence. This keeps periods ordered and disjoint in real time.

All arithmetic is done on UTC instants with `timedelta` (integer microseconds): no floats, exact inverse
`working_time_between(t, add_working_time(t, d)) == d`.

Calendar file format (`rulesets/calendars/<name>.yaml`)
-------------------------------------------------------
::

    name: cn                                   # required, unique across the calendars folder
    timezone: Asia/Shanghai                    # required, IANA zone name
    description: 中国大陆工作日历（法定节假日与调休）   # optional
    weekly:                                    # required; a weekday left out has no working time
      mon: ["09:00-12:00", "13:00-18:00"]      # keys mon tue wed thu fri sat sun (or 周一 … 周日)
      tue: ["09:00-12:00", "13:00-18:00"]
      wed: ["09:00-12:00", "13:00-18:00"]
      thu: ["09:00-12:00", "13:00-18:00"]
      fri: ["09:00-12:00", "13:00-18:00"]
      sat: []
      sun: []
    makeup_hours: ["09:00-12:00", "13:00-18:00"]   # optional; default: mon's hours
    holidays:                                  # optional; date: label — days off even on a weekday
      2026-10-01: 国庆节
    workdays:                                  # optional; date: label — make-up working days (调休)
      2026-10-10: 国庆节调休
    confirmed_through: 2026-12-31              # optional; last day of the officially confirmed schedule

Past `confirmed_through` the listed holidays (e.g. next year's statutory days) still count, but make-up days
are not known yet: every point computed past it is *provisional* (`BusinessCalendar.is_provisional`).

Periods are `"HH:MM-HH:MM"`, start before end, `24:00` allowed as an end, periods of one day must not
overlap (touching is fine). `holidays`/`workdays` may also be plain lists of dates. A date may not be
both a holiday and a make-up day. Every problem is reported at once with its `file:line:col`
(`InvalidRulesetError`).
"""

from __future__ import annotations

import difflib
import io
import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rulesvc.errors import InvalidRulesetError, Location, RulesetError

__all__ = [
    "BusinessCalendar",
    "always_open",
    "load_calendar",
    "load_calendars",
    "parse_calendar_text",
]

Period = tuple[time, time]

END_OF_DAY = time(0)
"""As a period end: 24:00."""

MAX_IDLE_DAYS = 3 * 366
"""A search for working time gives up after this many consecutive days without any."""

_ONE_DAY = timedelta(days=1)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _end_offset(end: time) -> timedelta:
    """Offset of a period end from midnight; `time(0)` is 24:00."""
    if end == END_OF_DAY:
        return _ONE_DAY
    return _time_offset(end)


def _time_offset(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _format_period(period: Period) -> str:
    start, end = period
    end_text = "24:00" if end == END_OF_DAY else end.isoformat(timespec="minutes")
    return f"{start.isoformat(timespec='minutes')}-{end_text}"


def _check_periods(periods: tuple[Period, ...], what: str) -> None:
    previous_end = timedelta(0)
    for index, (start, end) in enumerate(periods):
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(f"{what}: period times must be naive wall-clock times")
        if _time_offset(start) >= _end_offset(end):
            raise ValueError(f"{what}: period {_format_period((start, end))} does not end after it starts")
        if index and _time_offset(start) < previous_end:
            raise ValueError(f"{what}: periods must be sorted and must not overlap")
        previous_end = _end_offset(end)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (with a UTC offset), got {value!r}")


@dataclass(frozen=True)
class BusinessCalendar:
    """Working time in one time zone. Construct through `load_calendar` or `always_open`, or directly.

    `weekly` maps weekday (0 = Monday … 6 = Sunday) to sorted, non-overlapping wall-clock periods
    `[start, end)`; a missing weekday has no working time. See the module docstring for the semantics.
    """

    name: str
    tz: ZoneInfo
    weekly: Mapping[int, tuple[Period, ...]] = field(hash=False)
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    makeup_hours: tuple[Period, ...] = ()
    description: str = field(default="", compare=False)
    day_labels: Mapping[date, str] = field(default_factory=dict, compare=False, hash=False)
    """Optional names of holidays and make-up days (e.g. 国庆节), for explanations only."""
    confirmed_through: date | None = None
    """Last day of the officially confirmed schedule; None = every day is confirmed."""
    version: int = field(default=1, compare=False)
    """The published version of this calendar (1 for a calendar read from the rules folder)."""
    confirmed_location: Location | None = field(default=None, compare=False, hash=False)
    """Where `confirmed_through` is written (for positioned warnings)."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a calendar needs a name")
        for weekday, periods in self.weekly.items():
            if weekday not in range(7):
                raise ValueError(f"calendar {self.name}: weekday must be 0..6, got {weekday!r}")
            _check_periods(periods, f"calendar {self.name}, weekday {weekday}")
        _check_periods(self.makeup_hours, f"calendar {self.name}, makeup_hours")
        both = self.holidays & self.workdays
        if both:
            days = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"calendar {self.name}: days both holiday and make-up workday: {days}")
        # An immutable copy: the dataclass is frozen, its mapping should be too.
        object.__setattr__(self, "weekly", MappingProxyType(dict(self.weekly)))
        object.__setattr__(self, "day_labels", MappingProxyType(dict(self.day_labels)))

    # ---------------------------------------------------------------- days and instants

    def periods_on(self, day: date) -> tuple[Period, ...]:
        """The wall-clock working periods of a local calendar day (holidays and make-up days applied)."""
        if day in self.holidays:
            return ()
        if day in self.workdays:
            return self.makeup_hours
        return self.weekly.get(day.weekday(), ())

    def is_provisional(self, at: datetime) -> bool:
        """True when `at` falls on a local day after `confirmed_through` (make-up days there are unknown)."""
        _require_aware(at, "at")
        return self.confirmed_through is not None and at.astimezone(self.tz).date() > self.confirmed_through

    def is_working_time(self, at: datetime) -> bool:
        """True when `at` lies inside a working period (start inclusive, end exclusive)."""
        _require_aware(at, "at")
        instant = at.astimezone(UTC)
        day = at.astimezone(self.tz).date()
        return any(start <= instant < end for start, end in self._intervals(day))

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which `duration` of working time has elapsed since `start`.

        `duration == 0` returns `start` itself (converted to the calendar's zone). When the duration is used
        up exactly at the end of a period, the answer is that period end, not the start of the next period.
        The result is an aware datetime in the calendar's zone; do further arithmetic on it in UTC, since
        Python adds a timedelta to a datetime of a DST zone in wall-clock time.
        """
        _require_aware(start, "start")
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative, got {duration}")
        if not duration:
            return start.astimezone(self.tz)
        cursor = start.astimezone(UTC)
        remaining = duration
        for period_start, period_end in self._intervals_from(start.astimezone(self.tz).date()):
            if period_end <= cursor:
                continue
            begin = max(period_start, cursor)
            available = period_end - begin
            if remaining <= available:
                return (begin + remaining).astimezone(self.tz)
            remaining -= available
            cursor = period_end
        raise AssertionError("unreachable: _intervals_from never ends without raising")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in `[start, end)`; zero when `end <= start`. Inverse of `add_working_time`."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        begin_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
        if end_utc <= begin_utc:
            return timedelta(0)
        total = timedelta(0)
        day = start.astimezone(self.tz).date()
        last_day = end.astimezone(self.tz).date()
        while day <= last_day:
            for period_start, period_end in self._intervals(day):
                low, high = max(period_start, begin_utc), min(period_end, end_utc)
                if high > low:
                    total += high - low
            day += _ONE_DAY
        return total

    # ---------------------------------------------------------------- internals

    def _intervals_from(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) from `day` on, forever; ValueError after MAX_IDLE_DAYS without any."""
        idle_days = 0
        while True:
            intervals = self._intervals(day)
            if intervals:
                idle_days = 0
                yield from intervals
            else:
                idle_days += 1
                if idle_days > MAX_IDLE_DAYS:
                    raise ValueError(
                        f"calendar {self.name!r} has no working time in the {MAX_IDLE_DAYS} days before "
                        f"{day.isoformat()}: a deadline on it would never come"
                    )
            day += _ONE_DAY

    def _intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working periods of `day` as non-empty UTC intervals, in order (memoised per calendar: every
        SLA timer start computes them, and a calendar is immutable)."""
        cache: dict[date, tuple[tuple[datetime, datetime], ...]] = self.__dict__.setdefault(
            "_interval_cache", {}
        )
        found = cache.get(day)
        if found is None:
            if len(cache) > 20_000:
                cache.clear()
            found = cache[day] = self._compute_intervals(day)
        return found

    def _compute_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        result = []
        for start, end in self.periods_on(day):
            start_utc = self._wall_to_utc(day, start)
            end_utc = self._wall_to_utc(day + _ONE_DAY, END_OF_DAY) if end == END_OF_DAY else None
            if end_utc is None:
                end_utc = self._wall_to_utc(day, end)
            if end_utc > start_utc:
                result.append((start_utc, end_utc))
        return tuple(result)

    def _wall_to_utc(self, day: date, wall: time) -> datetime:
        """The UTC instant of a local wall time: the first occurrence if repeated, the jump if skipped."""
        local = datetime.combine(day, wall, tzinfo=self.tz)
        instant = local.astimezone(UTC)
        if instant.astimezone(self.tz).replace(tzinfo=None) == local.replace(tzinfo=None):
            return instant
        # `wall` falls in a gap. fold=0 and fold=1 map it to either side of the transition; the transition
        # instant is the first one whose offset differs from the earlier side's. Bisect on microseconds.
        other = local.replace(fold=1 - local.fold).astimezone(UTC)
        low, high = min(instant, other), max(instant, other)
        offset_before = low.astimezone(self.tz).utcoffset()
        while high - low > _ONE_MICROSECOND:
            middle = low + (high - low) // 2
            if middle.astimezone(self.tz).utcoffset() == offset_before:
                low = middle
            else:
                high = middle
        return high


def always_open(name: str = "24x7", tz: str = "Asia/Shanghai") -> BusinessCalendar:
    """A calendar where every instant is working time (the complaint SLA's clock)."""
    full_day: tuple[Period, ...] = ((time(0), END_OF_DAY),)
    return BusinessCalendar(
        name=name,
        tz=ZoneInfo(tz),
        weekly=dict.fromkeys(range(7), full_day),
        holidays=frozenset(),
        workdays=frozenset(),
        makeup_hours=full_day,
        description="全天候（24×7）",
    )


# ==================================================================== loading


_WEEKDAY_KEYS: dict[str, int] = {
    **{key: index for index, key in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    **{key: index for index, key in enumerate(("周一", "周二", "周三", "周四", "周五", "周六", "周日"))},
}
_TOP_LEVEL_KEYS = (
    "name",
    "timezone",
    "description",
    "weekly",
    "makeup_hours",
    "holidays",
    "workdays",
    "confirmed_through",
)
_PERIOD_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMEZONE_HINT = "IANA 时区名，例如 timezone: Asia/Shanghai（或 UTC、Europe/Berlin）"
_PERIOD_HINT = '写成 "HH:MM-HH:MM"，例如 "09:00-12:00"；结束可写 24:00'


@dataclass
class _Parsed:
    """What one file yields: the calendar (if valid), its errors and where its name is written."""

    calendar: BusinessCalendar | None
    errors: list[RulesetError]
    name_location: Location


class _FileReader:
    """Turns one composed YAML document into a BusinessCalendar, collecting positioned errors."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[RulesetError] = []

    def at(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def error(self, code: str, message: str, location: Location, hint: str | None = None) -> None:
        self.errors.append(RulesetError(code, message, location, hint))

    def scalar(self, node: Node, what: str) -> str | None:
        if isinstance(node, ScalarNode):
            return str(node.value)
        self.error("calendar.bad_type", f"{what} 应为单个值", self.at(node))
        return None

    def mapping_items(self, node: Node, what: str) -> list[tuple[ScalarNode, Node]]:
        """Items of a mapping with scalar keys; duplicate keys are reported and dropped."""
        if _is_null(node):
            return []
        if not isinstance(node, MappingNode):
            self.error("calendar.bad_type", f"{what} 应为映射（key: value）", self.at(node))
            return []
        items: list[tuple[ScalarNode, Node]] = []
        seen: dict[str, Location] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error("calendar.bad_type", f"{what} 的键应为单个值", self.at(key))
                continue
            text = str(key.value)
            if text in seen:
                self.error(
                    "calendar.duplicate_key",
                    f"{what} 中的键 {text!r} 重复",
                    self.at(key),
                    f"第一次出现在 {seen[text]}",
                )
                continue
            seen[text] = self.at(key)
            items.append((key, value))
        return items

    def periods(self, node: Node, what: str) -> tuple[Period, ...] | None:
        """A list of "HH:MM-HH:MM" strings → sorted periods; None (after reporting) when invalid."""
        if _is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.error(
                "calendar.bad_type",
                f'{what} 应为时间段列表，例如 ["09:00-12:00"]',
                self.at(node),
                _PERIOD_HINT,
            )
            return None
        parsed: list[tuple[Period, Node]] = []
        ok = True
        for item in node.value:
            period = self.period(item, what)
            if period is None:
                ok = False
            else:
                parsed.append((period, item))
        parsed.sort(key=lambda entry: (_time_offset(entry[0][0]), _end_offset(entry[0][1])))
        for (previous, _), (current, item) in itertools.pairwise(parsed):
            if _time_offset(current[0]) < _end_offset(previous[1]):
                ok = False
                self.error(
                    "calendar.overlapping_periods",
                    f"{what} 的时间段 {_format_period(current)} 与 {_format_period(previous)} 重叠",
                    self.at(item),
                    "同一天的时间段不能重叠（首尾相接可以）",
                )
        return tuple(period for period, _ in parsed) if ok else None

    def period(self, node: Node, what: str) -> Period | None:
        text = self.scalar(node, f"{what} 的时间段")
        if text is None:
            return None
        match = _PERIOD_RE.match(text)
        problem = None
        if match is None:
            problem = "格式不对"
        else:
            start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
            if start_h > 23 or start_m > 59 or end_m > 59 or end_h > 24 or (end_h == 24 and end_m):
                problem = "时间超出范围"
            else:
                start = time(start_h, start_m)
                end = END_OF_DAY if end_h == 24 else time(end_h, end_m)
                if _time_offset(start) >= _end_offset(end):
                    problem = "开始时间必须早于结束时间"
                else:
                    return (start, end)
        self.error(
            "calendar.bad_time_range",
            f"{what} 的时间段 {text!r} 无效：{problem}",
            self.at(node),
            _PERIOD_HINT,
        )
        return None

    def dates(self, node: Node, what: str) -> dict[date, tuple[str, Location]]:
        """`date: label` mapping (or list of dates) → {date: (label, location of the date)}."""
        entries: list[tuple[ScalarNode, str]] = []
        if isinstance(node, SequenceNode):
            for item in node.value:
                if isinstance(item, ScalarNode):
                    entries.append((item, ""))
                else:
                    self.error("calendar.bad_date", f"{what} 中的日期应为 YYYY-MM-DD", self.at(item))
        else:
            for key, value in self.mapping_items(node, what):
                label = "" if _is_null(value) else (self.scalar(value, f"{what} 的名称") or "")
                entries.append((key, label))
        result: dict[date, tuple[str, Location]] = {}
        for key, label in entries:
            text = str(key.value)
            day = _parse_date(text)
            if day is None:
                self.error(
                    "calendar.bad_date",
                    f"{what} 中的日期 {text!r} 无效",
                    self.at(key),
                    "写成 YYYY-MM-DD，例如 2026-10-01",
                )
                continue
            if day in result:
                self.error(
                    "calendar.duplicate_key",
                    f"{what} 中的日期 {text} 重复",
                    self.at(key),
                    f"第一次出现在 {result[day][1]}",
                )
                continue
            result[day] = (label, self.at(key))
        return result

    def read(self, root: Node | None) -> _Parsed:
        top = Location(self.file, 1, 1)
        if root is None or not isinstance(root, MappingNode):
            self.error(
                "calendar.bad_type",
                "日历文件应为映射（name、timezone、weekly…）",
                top if root is None else self.at(root),
            )
            return _Parsed(None, self.errors, top)
        fields: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in self.mapping_items(root, "日历"):
            text = str(key.value)
            if text not in _TOP_LEVEL_KEYS:
                close = difflib.get_close_matches(text, _TOP_LEVEL_KEYS, n=1)
                self.error(
                    "calendar.unknown_field",
                    f"未知字段 {text!r}",
                    self.at(key),
                    f"是不是 {close[0]}？" if close else "可用字段：" + "、".join(_TOP_LEVEL_KEYS),
                )
                continue
            fields[text] = (key, value)

        name_location = top
        name: str | None = None
        if "name" not in fields:
            self.error("calendar.missing_field", "缺少 name（日历名称）", top, "例如 name: cn")
        else:
            key, value = fields["name"]
            # An empty value's mark is wherever the parser stopped (often the next line): point at the key.
            name_location = self.at(key) if _is_null(value) else self.at(value)
            name = self.scalar(value, "name")
            if name is not None and (_is_null(value) or not name.strip()):
                self.error("calendar.missing_field", "name 不能为空", name_location, "例如 name: cn")
                name = None

        tz: ZoneInfo | None = None
        if "timezone" not in fields:
            self.error("calendar.missing_field", "缺少 timezone（时区）", top, _TIMEZONE_HINT)
        else:
            key, value = fields["timezone"]
            tz_text = self.scalar(value, "timezone")
            if tz_text is not None:
                tz = None if _is_null(value) else _zone(tz_text)
                if tz is None:
                    where = self.at(key) if _is_null(value) else self.at(value)
                    self.error("calendar.bad_timezone", f"未知时区 {tz_text!r}", where, _TIMEZONE_HINT)

        description = ""
        if "description" in fields and not _is_null(fields["description"][1]):
            description = self.scalar(fields["description"][1], "description") or ""

        weekly: dict[int, tuple[Period, ...]] = {}
        weekly_ok = True
        if "weekly" not in fields:
            self.error(
                "calendar.missing_field",
                "缺少 weekly（每周工作时间）",
                top,
                'weekly: {mon: ["09:00-18:00"], …}',
            )
            weekly_ok = False
        else:
            seen_days: dict[int, Location] = {}
            for key, value in self.mapping_items(fields["weekly"][1], "weekly"):
                text = str(key.value)
                weekday = _WEEKDAY_KEYS.get(text.strip().lower())
                if weekday is None:
                    self.error(
                        "calendar.unknown_weekday",
                        f"未知的星期 {text!r}",
                        self.at(key),
                        "可用：mon tue wed thu fri sat sun（或 周一 … 周日）",
                    )
                    weekly_ok = False
                    continue
                if weekday in seen_days:
                    self.error(
                        "calendar.duplicate_key",
                        f"weekly 中 {text!r} 重复",
                        self.at(key),
                        f"第一次出现在 {seen_days[weekday]}",
                    )
                    weekly_ok = False
                    continue
                seen_days[weekday] = self.at(key)
                periods = self.periods(value, f"weekly.{text}")
                if periods is None:
                    weekly_ok = False
                elif periods:
                    weekly[weekday] = periods

        holidays = self.dates(fields["holidays"][1], "holidays") if "holidays" in fields else {}
        workdays = self.dates(fields["workdays"][1], "workdays") if "workdays" in fields else {}
        for day in sorted(holidays.keys() & workdays.keys()):
            self.error(
                "calendar.conflicting_day",
                f"{day.isoformat()} 同时是节假日和调休工作日",
                workdays[day][1],
                f"节假日写在 {holidays[day][1]}",
            )

        confirmed, confirmed_location = self.confirmed(fields.get("confirmed_through"))

        makeup: tuple[Period, ...] | None
        if "makeup_hours" in fields:
            makeup = self.periods(fields["makeup_hours"][1], "makeup_hours")
        else:
            makeup = weekly.get(0, ())
            if workdays and weekly_ok and not makeup:
                self.error(
                    "calendar.missing_field",
                    "有调休工作日（workdays）但周一没有工作时间，需写明 makeup_hours",
                    self.at(fields["workdays"][0]),
                    'makeup_hours: ["09:00-12:00", "13:00-18:00"]',
                )

        if self.errors or name is None or tz is None or makeup is None:
            return _Parsed(None, self.errors, name_location)
        labels = {day: label for day, (label, _) in holidays.items() if label}
        labels.update({day: label for day, (label, _) in workdays.items() if label})
        calendar = BusinessCalendar(
            name=name,
            tz=tz,
            weekly=weekly,
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
            makeup_hours=makeup,
            description=description,
            day_labels=labels,
            confirmed_through=confirmed,
            confirmed_location=confirmed_location,
        )
        return _Parsed(calendar, self.errors, name_location)

    def confirmed(self, entry: tuple[ScalarNode, Node] | None) -> tuple[date | None, Location | None]:
        """`confirmed_through: YYYY-MM-DD` → (date, where it is written); (None, None) when absent/invalid."""
        if entry is None:
            return None, None
        key, value = entry
        where = self.at(key) if _is_null(value) else self.at(value)
        text = None if _is_null(value) else self.scalar(value, "confirmed_through")
        day = _parse_date(text) if text is not None else None
        if day is None:
            self.error(
                "calendar.bad_date",
                f"confirmed_through 的日期 {text or ''!r} 无效",
                where,
                "写成 YYYY-MM-DD，例如 confirmed_through: 2026-12-31（官方安排已确认到的最后一天）",
            )
        return day, where


def _parse_date(text: str) -> date | None:
    if not _DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and str(node.tag).endswith(":null")


def _zone(name: str) -> ZoneInfo | None:
    if not name.strip() or name != name.strip():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _parse_file(path: Path) -> _Parsed:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        reader = _FileReader(file)
        reader.error("calendar.encoding", f"文件不是 UTF-8 编码：{exc.reason}", Location(file, 1, 1))
        return _Parsed(None, reader.errors, Location(file, 1, 1))
    return _parse_text(file, text)


def parse_calendar_text(
    file: str, text: str, version: int = 1
) -> tuple[BusinessCalendar | None, list[RulesetError], Location]:
    """A calendar from its file text (e.g. a draft or a stored version), numbered `version`: the calendar,
    or every positioned error (`file:line:col`), and where its name is written."""
    parsed = _parse_text(file, text)
    calendar = parsed.calendar
    if calendar is not None and version != calendar.version:
        calendar = replace(calendar, version=version)
    return calendar, parsed.errors, parsed.name_location


def _parse_text(file: str, text: str) -> _Parsed:
    reader = _FileReader(file)
    try:
        root = YAML(typ="rt").compose(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file)
        reader.error("calendar.yaml_syntax", f"YAML 语法错误：{exc.problem or exc.context}", location)
        return _Parsed(None, reader.errors, Location(file, 1, 1))
    return reader.read(root)


def load_calendar(path: Path) -> BusinessCalendar:
    """Load one calendar file; InvalidRulesetError lists every problem with its `file:line:col`."""
    parsed = _parse_file(path)
    if parsed.errors or parsed.calendar is None:
        raise InvalidRulesetError(parsed.errors)
    return parsed.calendar


def load_calendars(directory: Path) -> dict[str, BusinessCalendar]:
    """Load every `*.yaml` in `directory`, keyed by calendar name; all files' errors are raised together."""
    if not directory.is_dir():
        raise FileNotFoundError(f"calendar folder not found: {directory}")
    errors: list[RulesetError] = []
    calendars: dict[str, BusinessCalendar] = {}
    defined_at: dict[str, Location] = {}
    for path in sorted(directory.glob("*.yaml")):
        parsed = _parse_file(path)
        errors.extend(parsed.errors)
        calendar = parsed.calendar
        if calendar is None:
            continue
        if calendar.name in calendars:
            errors.append(
                RulesetError(
                    "calendar.duplicate_name",
                    f"日历名称 {calendar.name!r} 重复",
                    parsed.name_location,
                    f"已在 {defined_at[calendar.name]} 定义",
                )
            )
            continue
        calendars[calendar.name] = calendar
        defined_at[calendar.name] = parsed.name_location
    if errors:
        raise InvalidRulesetError(errors)
    return calendars
