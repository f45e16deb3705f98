"""Calendar files: the YAML a person writes → a `BusinessCalendar`, or every problem with its `file:line:col`.

Read on the shared positioned-YAML reader (`rulesvc.yamlpos.compose`): syntax errors are the same
`yaml.syntax` / `yaml.duplicate_key` as a ruleset's, "did you mean" comes from `yamlpos.closest`.

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

import itertools
import re
from dataclasses import dataclass, replace
from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rulesvc.errors import InvalidRulesetError, Location, RulesetError
from rulesvc.sla.calendar import (
    END_OF_DAY,
    BusinessCalendar,
    Period,
    end_offset,
    format_period,
    time_offset,
)
from rulesvc.yamlpos import closest, compose, node_location

__all__ = ["load_calendar", "load_calendars", "parse_calendar_text"]


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
        return node_location(self.file, node)

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
        parsed.sort(key=lambda entry: (time_offset(entry[0][0]), end_offset(entry[0][1])))
        for (previous, _), (current, item) in itertools.pairwise(parsed):
            if time_offset(current[0]) < end_offset(previous[1]):
                ok = False
                self.error(
                    "calendar.overlapping_periods",
                    f"{what} 的时间段 {format_period(current)} 与 {format_period(previous)} 重叠",
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
                if time_offset(start) >= end_offset(end):
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
                close = closest(text, _TOP_LEVEL_KEYS, cutoff=0.6)
                self.error(
                    "calendar.unknown_field",
                    f"未知字段 {text!r}",
                    self.at(key),
                    f"是不是 {close}？" if close else "可用字段：" + "、".join(_TOP_LEVEL_KEYS),
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
            if weekly_ok and not weekly:
                # Make-up days end; after the last one a deadline on this calendar would never come.
                self.error(
                    "calendar.no_working_time",
                    "weekly 里一周每天都没有工作时间：这个日历上的截止时间永远不会到来",
                    self.at(fields["weekly"][0]),
                    'weekly: {mon: ["09:00-18:00"], …}；全天候计时写 mon … sun: ["00:00-24:00"]',
                )

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
    root, errors = compose(file, text)
    if errors:
        return _Parsed(None, errors, Location(file, 1, 1))
    return _FileReader(file).read(root)


def load_calendar(path: Path) -> BusinessCalendar:
    """Load one calendar file; InvalidRulesetError lists every problem with its `file:line:col`."""
    parsed = _parse_file(path)
    if parsed.errors or parsed.calendar is None:
        raise InvalidRulesetError(parsed.errors)
    return parsed.calendar


def load_calendars(directory: Path) -> dict[str, BusinessCalendar]:
    """Load every `*.yaml` in `directory`, keyed by calendar name; all files' errors are raised together."""
    if not directory.is_dir():
        raise FileNotFoundError(f"找不到日历文件夹：{directory}")
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
