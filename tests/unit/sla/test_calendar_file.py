"""Calendar files: loading, positioned errors, the shipped folder."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rulesvc.errors import InvalidRulesetError
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.calendar_file import load_calendar, load_calendars, parse_calendar_text

CALENDARS = Path(__file__).resolve().parents[3] / "rulesets" / "calendars"
SH = ZoneInfo("Asia/Shanghai")
OFFICE: tuple[tuple[time, time], ...] = ((time(9), time(12)), (time(13), time(18)))


@pytest.fixture(scope="module")
def shipped() -> dict[str, BusinessCalendar]:
    return load_calendars(CALENDARS)


GOOD = """\
name: test
timezone: Asia/Shanghai
description: 测试日历
weekly:
  mon: ["09:00-12:00", "13:00-18:00"]
  周二: ["09:00-18:00"]
  sat: []
holidays:
  2026-10-01: 国庆节
workdays:
  2026-10-10: 国庆节调休
"""


def write(tmp_path: Path, text: str, name: str = "cal.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[tuple[str, int, int]]:
    with pytest.raises(InvalidRulesetError) as info:
        load_calendar(path)
    return [(e.code, e.location.line, e.location.col) for e in info.value.errors]


def test_load_good_file(tmp_path: Path) -> None:
    cal = load_calendar(write(tmp_path, GOOD))
    assert cal.name == "test"
    assert cal.description == "测试日历"
    assert cal.weekly == {0: OFFICE, 1: ((time(9), time(18)),)}
    assert cal.makeup_hours == OFFICE  # defaults to Monday's hours
    assert cal.holidays == {date(2026, 10, 1)}
    assert cal.workdays == {date(2026, 10, 10)}
    assert cal.day_labels == {date(2026, 10, 1): "国庆节", date(2026, 10, 10): "国庆节调休"}


def test_bad_time_range_position(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"13:00-18:00"]', '"14:00-13:00"]'))
    assert errors_of(path) == [("calendar.bad_time_range", 5, 24)]
    for bad in ('"9-12"', '"09:00-24:30"', '"25:00-26:00"', '"09:00-09:00"', "[1, 2]"):
        path = write(tmp_path, GOOD.replace('"09:00-18:00"', bad))
        assert [code for code, *_ in errors_of(path)] in (
            ["calendar.bad_time_range"],
            ["calendar.bad_type"],
        ), bad


def test_unknown_weekday_position_and_hint(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  sat: []", "  saturday: []"))
    with pytest.raises(InvalidRulesetError) as info:
        load_calendar(path)
    (error,) = info.value.errors
    assert (error.code, error.location.line, error.location.col) == ("calendar.unknown_weekday", 7, 3)
    assert error.hint is not None and "sat" in error.hint
    assert str(error).startswith(f"{path}:7:3: ")


def test_bad_date_position(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("2026-10-01", "2026-13-01"))
    assert errors_of(path) == [("calendar.bad_date", 9, 3)]
    path = write(tmp_path, GOOD.replace("2026-10-10", "十月十日"))
    assert errors_of(path) == [("calendar.bad_date", 11, 3)]


def test_bad_timezone_position_and_hint(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("Asia/Shanghai", "Asia/Shangai"))
    with pytest.raises(InvalidRulesetError) as info:
        load_calendar(path)
    (error,) = info.value.errors
    assert (error.code, error.location.line, error.location.col) == ("calendar.bad_timezone", 2, 11)
    assert error.hint is not None and "Asia/Shanghai" in error.hint
    assert errors_of(write(tmp_path, GOOD.replace(" Asia/Shanghai", ""))) == [("calendar.bad_timezone", 2, 1)]


def test_overlapping_periods_position(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"13:00-18:00"]', '"11:30-18:00"]'))
    assert errors_of(path) == [("calendar.overlapping_periods", 5, 24)]
    touching = write(tmp_path, GOOD.replace('"13:00-18:00"]', '"12:00-18:00"]'))
    assert load_calendar(touching).weekly[0] == ((time(9), time(12)), (time(12), time(18)))


def test_missing_name(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("name: test\n", ""))
    assert errors_of(path) == [("calendar.missing_field", 1, 1)]
    path = write(tmp_path, GOOD.replace("name: test", "name:"))
    assert errors_of(path) == [("calendar.missing_field", 1, 1)]


def test_every_error_is_reported_sorted(tmp_path: Path) -> None:
    text = (
        GOOD.replace("Asia/Shanghai", "Mars/Olympus")
        .replace("  sat: []", "  sat: []\n  xyz: []")
        .replace("2026-10-01", "2026-02-30")
        .replace("description:", "descripton:")
    )
    codes = errors_of(write(tmp_path, text))
    assert codes == [
        ("calendar.bad_timezone", 2, 11),
        ("calendar.unknown_field", 3, 1),
        ("calendar.unknown_weekday", 8, 3),
        ("calendar.bad_date", 10, 3),
    ]


def test_other_file_errors(tmp_path: Path) -> None:
    assert errors_of(write(tmp_path, "name: [oops\n")) == [("yaml.syntax", 2, 1)]
    assert errors_of(write(tmp_path, "- a list\n")) == [("calendar.bad_type", 1, 1)]
    assert errors_of(write(tmp_path, "")) == [("calendar.bad_type", 1, 1)]
    conflict = GOOD.replace("2026-10-10: 国庆节调休", "2026-10-01: 调休")
    assert errors_of(write(tmp_path, conflict)) == [("calendar.conflicting_day", 11, 3)]
    duplicate = GOOD.replace("  sat: []", "  sat: []\n  mon: []")
    assert errors_of(write(tmp_path, duplicate)) == [("calendar.duplicate_key", 8, 3)]
    no_makeup = GOOD.replace('  mon: ["09:00-12:00", "13:00-18:00"]\n', "")
    assert errors_of(write(tmp_path, no_makeup)) == [("calendar.missing_field", 9, 1)]


def test_load_calendars_rejects_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, "# same name\n" + GOOD, "b.yaml")
    write(tmp_path, "not: yaml we read", "ignored.txt")
    with pytest.raises(InvalidRulesetError) as info:
        load_calendars(tmp_path)
    (error,) = info.value.errors
    assert error.code == "calendar.duplicate_name"
    assert str(error.location) == f"{tmp_path / 'b.yaml'}:2:7"
    assert error.hint is not None and "a.yaml" in error.hint


def test_load_calendars_collects_errors_of_all_files(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("Asia/Shanghai", "Nowhere"), "a.yaml")
    write(tmp_path, GOOD.replace("name: test", "name: other").replace("2026-10-01", "bad"), "b.yaml")
    with pytest.raises(InvalidRulesetError) as info:
        load_calendars(tmp_path)
    assert [(Path(e.location.file).name, e.code) for e in info.value.errors] == [
        ("a.yaml", "calendar.bad_timezone"),
        ("b.yaml", "calendar.bad_date"),
    ]


def test_load_calendars_of_the_shipped_folder(shipped: dict[str, BusinessCalendar]) -> None:
    assert set(shipped) >= {"cn", "24x7"}


def test_text_and_file_give_the_same_calendar(tmp_path: Path) -> None:
    from_file = load_calendar(write(tmp_path, GOOD))
    from_text, errors, name_at = parse_calendar_text("cal.yaml", GOOD, version=3)
    assert errors == [] and from_text is not None
    assert from_text.version == 3 and from_text.name == from_file.name == "test"
    assert (from_text.holidays, from_text.workdays) == (from_file.holidays, from_file.workdays)
    assert (name_at.line, name_at.col) == (1, 7)


def test_misspelt_top_level_field_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(InvalidRulesetError) as info:
        load_calendar(write(tmp_path, GOOD.replace("timezone:", "timezon:")))
    unknown = [e for e in info.value.errors if e.code == "calendar.unknown_field"]
    assert [(e.location.line, e.hint) for e in unknown] == [(2, "是不是 timezone？")]


def test_a_week_without_working_time_is_refused_at_the_weekly_key(tmp_path: Path) -> None:
    """A deadline on such a calendar would never come: refused when the file is read, not when a timer starts."""
    text = GOOD.replace('  mon: ["09:00-12:00", "13:00-18:00"]\n  周二: ["09:00-18:00"]\n', "  mon: []\n")
    with pytest.raises(InvalidRulesetError) as info:
        load_calendar(write(tmp_path, text.replace("workdays:\n  2026-10-10: 国庆节调休\n", "")))
    [error] = info.value.errors
    assert (error.code, error.location.line, error.location.col) == ("calendar.no_working_time", 4, 1)
    assert error.message == "weekly 里一周每天都没有工作时间：这个日历上的截止时间永远不会到来"
    assert str(error).endswith(
        '（提示：weekly: {mon: ["09:00-18:00"], …}；全天候计时写 mon … sun: ["00:00-24:00"]）'
    )
