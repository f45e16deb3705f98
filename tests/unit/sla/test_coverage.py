"""Calendar coverage: `confirmed_through` is read with its position, points past it are provisional, and
`rulesvc check` warns (non-fatal, positioned) when the coverage ends within 60 days."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from rulesvc.errors import InvalidRulesetError
from rulesvc.sla.calendar_file import load_calendar
from rulesvc.sla.coverage import coverage_warnings, days_left, provisional_fields, today_in

ROOT = Path(__file__).resolve().parents[3]
RULESVC = Path(sys.executable).parent / "rulesvc"
CALENDAR = """\
name: bank
timezone: Asia/Shanghai
confirmed_through: 2026-12-31
weekly:
  mon: ["09:00-18:00"]
holidays:
  2027-01-01: 元旦
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendars" / "bank.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_confirmed_through_is_read_and_marks_later_points_provisional(tmp_path: Path) -> None:
    calendar = load_calendar(write(tmp_path, CALENDAR))
    assert calendar.confirmed_through == date(2026, 12, 31)
    assert calendar.confirmed_location is not None and calendar.confirmed_location.line == 3
    last_confirmed = datetime(2026, 12, 31, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    first_unconfirmed = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 2027-01-01 00:00 in Shanghai
    assert not calendar.is_provisional(last_confirmed)
    assert calendar.is_provisional(first_unconfirmed)
    assert provisional_fields(calendar, [last_confirmed]) == {}
    assert provisional_fields(calendar, [last_confirmed, first_unconfirmed]) == {
        "provisional": True,
        "calendar_version": 1,
    }


def test_a_calendar_without_coverage_is_never_provisional(tmp_path: Path) -> None:
    calendar = load_calendar(write(tmp_path, CALENDAR.replace("confirmed_through: 2026-12-31\n", "")))
    assert not calendar.is_provisional(datetime(2099, 1, 1, tzinfo=UTC))
    assert days_left(calendar, date(2026, 12, 4)) is None
    assert coverage_warnings({"bank": calendar}, date(2098, 1, 1)) == []


@pytest.mark.parametrize("value", ["2026-13-01", "soon", "''"])
def test_a_bad_confirmed_through_is_a_positioned_error(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, CALENDAR.replace("2026-12-31", value, 1))
    with pytest.raises(InvalidRulesetError) as raised:
        load_calendar(path)
    [error] = raised.value.errors
    assert (error.code, error.location.line, error.location.col) == ("calendar.bad_date", 3, 20)


def test_coverage_warnings_within_sixty_days(tmp_path: Path) -> None:
    calendars = {"bank": load_calendar(write(tmp_path, CALENDAR))}
    assert coverage_warnings(calendars, date(2026, 10, 31)) == []  # 61 days left
    [warning] = coverage_warnings(calendars, date(2026, 12, 4))
    assert str(warning).startswith(f"{tmp_path / 'calendars' / 'bank.yaml'}:3:20: 警告：日历 bank")
    assert "还剩 27 天" in warning.message
    [late] = coverage_warnings(calendars, date(2027, 1, 3))
    assert "已过期 3 天" in late.message


def test_today_honours_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULESVC_TODAY", "2026-12-04")
    assert today_in() == date(2026, 12, 4)
    monkeypatch.delenv("RULESVC_TODAY")
    assert today_in(now=datetime(2026, 12, 4, 17, 0, tzinfo=UTC)) == date(2026, 12, 5)


def test_check_warns_on_stderr_and_still_passes() -> None:
    near = subprocess.run(
        [str(RULESVC), "check", "rulesets/", "--today", "2026-12-04"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert near.returncode == 0, near.stderr
    assert near.stdout.startswith("检查通过：")
    assert near.stderr.startswith(
        "rulesets/calendars/cn.yaml:10:20: 警告：日历 cn 的官方安排只确认到 2026-12-31"
    )
    far = subprocess.run(
        [str(RULESVC), "check", "rulesets/", "--today", "2026-10-01"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert far.returncode == 0 and far.stderr == ""


def test_shipped_cn_calendar_keeps_2027_statutory_days_off() -> None:
    calendar = load_calendar(ROOT / "rulesets" / "calendars" / "cn.yaml")
    assert calendar.confirmed_through == date(2026, 12, 31)
    for day in ("2027-01-01", "2027-02-05", "2027-02-08", "2027-04-05", "2027-05-03", "2027-10-01"):
        assert date.fromisoformat(day) in calendar.holidays, day
    assert not any(day.year == 2027 for day in calendar.workdays)
