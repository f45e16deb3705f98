"""The PRC working calendar from the `holidays` package (`holidays.China`): which years are confirmed (the
package transcribed the State Council notice: it knows that year's 调休 make-up working days), and the calendar
file text covering them plus unconfirmed years with their statutory days off only.

Used by `scripts/import_cn_calendar.py` (the shipped `rulesets/calendars/cn.yaml`) and by
`rulesvc calendars import-cn --year YYYY` (a draft for the service).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date, timedelta
from importlib.metadata import version

from holidays.countries.china import China

COMMAND = ".venv/bin/python scripts/import_cn_calendar.py"
WORKING_HOURS = '["09:00-12:00", "13:00-18:00"]'
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Suffixes of package labels that do not change which festival a day belongs to.
_LABEL_NOISE = re.compile(r"（[^）]*）$|延长假期$")
# The eve belongs to the Spring Festival break: its make-up days are called 春节调休.
_FESTIVAL_OF = {"农历除夕": "春节"}


def festival_names(labels: Iterable[str]) -> list[str]:
    """Festival names behind holiday labels: '国庆节（补假）' → 国庆节; swap-day labels carry none."""
    names: list[str] = []
    for label in labels:
        for part in label.split(";"):
            part = part.strip()
            if not part or part.startswith("休息日"):
                continue
            base = _LABEL_NOISE.sub("", part).strip()
            base = _FESTIVAL_OF.get(base, base)
            if base and base not in names:
                names.append(base)
    return names


def makeup_label(workday: date, days_off: dict[date, str], workdays: set[date]) -> str:
    """'国庆节调休' for the make-up day that pays for a day off of the National Day break.

    The package labels the swapped day off '休息日（由 <workday> 调休）'; the festival is found in the run of
    consecutive non-working days around it.
    """
    key = workday.isoformat()
    swapped = [day for day, label in days_off.items() if key in label]
    if not swapped:
        return "调休上班日"

    def off(day: date) -> bool:
        return day in days_off or (day.weekday() >= 5 and day not in workdays)

    labels: list[str] = []
    for anchor in swapped:
        first = anchor
        while off(first - timedelta(days=1)):
            first -= timedelta(days=1)
        day = first
        while off(day):
            if day in days_off:
                labels.append(days_off[day])
            day += timedelta(days=1)
    names = festival_names(labels)
    return ("、".join(names) + "调休") if names else "调休上班日"


def build(through_year: int | None = None, command: str = COMMAND) -> tuple[str, list[int]]:
    """The cn.yaml text and the confirmed years it covers (unconfirmed years up to `through_year`, default
    the year after the last confirmed one)."""
    known = range(China.start_year, China.end_year + 1)
    china = China(years=known, language="zh_CN")  # type: ignore[no-untyped-call]
    workdays_all = set(china.weekend_workdays)
    years = sorted({day.year for day in workdays_all})
    if not years:
        raise ValueError(f"holidays {package_version()} 没有中国大陆的调休上班日，没有可导入的内容")
    last = through_year if through_year is not None else years[-1] + 1
    unconfirmed = [year for year in range(years[-1] + 1, last + 1) if year <= China.end_year]
    covered = set(years) | set(unconfirmed)
    days_off = {day: str(name) for day, name in sorted(china.items())}
    holidays_out = {day: name for day, name in days_off.items() if day.year in covered}
    workdays_out = sorted(day for day in workdays_all if day.year in covered)

    clash = sorted(set(holidays_out) & set(workdays_out))
    if clash:
        raise ValueError(f"软件包把这些日子同时列为节假日和调休上班日：{', '.join(map(str, clash))}")
    not_weekend = [day for day in workdays_out if day.weekday() < 5]
    if not_weekend:
        raise ValueError(f"软件包列出的调休上班日不是周末：{', '.join(map(str, not_weekend))}")

    span = f"{years[0]}–{years[-1]}"
    gaps = sorted(set(range(years[0], years[-1] + 1)) - covered)
    lines = [
        "# 由脚本生成，请勿手工修改 / GENERATED FILE, do not edit by hand.",
        f"# Command: {command}",
        f"# Source: holidays=={package_version()} (holidays.China, language zh_CN).",
        f"# Years: {span}{' except ' + ', '.join(map(str, gaps)) if gaps else ''} — every year for which the package"
        " knows official 调休 make-up working days.",
        (
            f"# Unconfirmed: {', '.join(map(str, unconfirmed))} — statutory days off only (make-up days not yet"
            " published; deadlines there are provisional)."
            if unconfirmed
            else "# No unconfirmed years."
        ),
        "# Re-run the command (or `rulesvc calendars import-cn`) after the State Council publishes the notice.",
        "name: cn",
        "timezone: Asia/Shanghai",
        f"description: 中国大陆工作日历（法定节假日与调休，{span}）",
        f"confirmed_through: {years[-1]}-12-31",
        "weekly:",
    ]
    for index, weekday in enumerate(WEEKDAYS):
        lines.append(f"  {weekday}: {WORKING_HOURS if index < 5 else '[]'}")
    lines.append(f"makeup_hours: {WORKING_HOURS}")
    lines.append("holidays:")
    current_year = None
    for day, name in holidays_out.items():
        if day.year != current_year:
            current_year = day.year
            note = " — unconfirmed: statutory days off only" if current_year in unconfirmed else ""
            lines.append(f"  # {current_year}{note}")
        lines.append(
            f"  {day.isoformat()}: {json.dumps(name, ensure_ascii=False)}  # {WEEKDAYS[day.weekday()]}"
        )
    lines.append("workdays:")
    current_year = None
    for day in workdays_out:
        if day.year != current_year:
            current_year = day.year
            lines.append(f"  # {current_year}")
        label = makeup_label(day, days_off, workdays_all)
        lines.append(
            f"  {day.isoformat()}: {json.dumps(label, ensure_ascii=False)}  # {WEEKDAYS[day.weekday()]}"
        )
    return "\n".join(lines) + "\n", years


def package_version() -> str:
    return version("holidays")
