"""Working-time math on business calendars and the shipped calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulesvc.sla.calendar import END_OF_DAY, BusinessCalendar, always_open
from rulesvc.sla.calendar_file import load_calendar, load_calendars

CALENDARS = Path(__file__).resolve().parents[3] / "rulesets" / "calendars"
SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
US = timedelta(microseconds=1)
OFFICE: tuple[tuple[time, time], ...] = ((time(9), time(12)), (time(13), time(18)))


def sh(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=SH)


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def shipped() -> dict[str, BusinessCalendar]:
    return load_calendars(CALENDARS)


@pytest.fixture(scope="module")
def cn(shipped: dict[str, BusinessCalendar]) -> BusinessCalendar:
    return shipped["cn"]


def berlin_office() -> BusinessCalendar:
    """Mon–Fri 09–17 wall clock, Sunday night shift 01:00–04:00 (crosses both DST changes), a holiday."""
    return BusinessCalendar(
        name="berlin",
        tz=BERLIN,
        weekly={
            **dict.fromkeys(range(5), ((time(9), time(17)),)),
            6: ((time(1), time(4)),),
        },
        holidays=frozenset({date(2026, 4, 3), date(2026, 12, 25)}),
        workdays=frozenset({date(2026, 10, 24)}),
        makeup_hours=((time(10), time(14)),),
    )


# ---------------------------------------------------------------- docs/domain.md examples (cn calendar)


def test_loan_created_before_golden_week_is_due_at_noon_after_it(cn: BusinessCalendar) -> None:
    due = cn.add_working_time(sh(2026, 9, 30, 17), 4 * H)
    assert due == sh(2026, 10, 8, 12)  # 1 h on Sep 30, 3 h on Oct 8 morning: 12:00, not 13:00
    assert due.utcoffset() == timedelta(hours=8)
    assert due.isoformat() == "2026-10-08T12:00:00+08:00"


def test_friday_afternoon_runs_into_the_makeup_saturday(cn: BusinessCalendar) -> None:
    assert cn.add_working_time(sh(2026, 10, 9, 17), 4 * H) == sh(2026, 10, 10, 12)


def test_lunch_break_is_not_working_time(cn: BusinessCalendar) -> None:
    assert cn.add_working_time(sh(2026, 9, 29, 11), 2 * H) == sh(2026, 9, 29, 14)


@pytest.mark.parametrize(
    ("start", "duration", "due"),
    [
        (sh(2026, 9, 29, 10), 2 * H, sh(2026, 9, 29, 12)),  # ends at the lunch break
        (sh(2026, 9, 29, 17), 1 * H, sh(2026, 9, 29, 18)),  # ends at close of business
        (sh(2026, 9, 29, 9), 8 * H, sh(2026, 9, 29, 18)),  # a full working day
        (sh(2026, 9, 29, 9), 8 * H + US, sh(2026, 9, 30, 9) + US),
        (sh(2026, 9, 29, 12), 1 * H, sh(2026, 9, 29, 14)),  # start exactly at a period end
        (sh(2026, 9, 29, 12, 30), 1 * H, sh(2026, 9, 29, 14)),  # start inside lunch
        (sh(2026, 9, 29, 7), 1 * H, sh(2026, 9, 29, 10)),  # early morning
        (sh(2026, 9, 29, 22), timedelta(minutes=30), sh(2026, 9, 30, 9, 30)),  # night
        (sh(2026, 9, 26, 10), 1 * H, sh(2026, 9, 28, 10)),  # ordinary Saturday
        (sh(2026, 9, 20, 10), 1 * H, sh(2026, 9, 20, 11)),  # make-up Sunday 2026-09-20 is worked
        (sh(2026, 10, 3, 10), 1 * H, sh(2026, 10, 8, 10)),  # inside the holiday
        (sh(2026, 10, 1, 9), 1 * H, sh(2026, 10, 8, 10)),  # holiday on a weekday
        (sh(2026, 9, 24, 17, 30), 1 * H, sh(2026, 9, 28, 9, 30)),  # Mid-Autumn Friday 09-25 off
    ],
)
def test_add_working_time_on_cn(
    cn: BusinessCalendar, start: datetime, duration: timedelta, due: datetime
) -> None:
    assert cn.add_working_time(start, duration) == due
    assert cn.working_time_between(start, due) == duration


def test_utc_input_gives_result_in_calendar_zone(cn: BusinessCalendar) -> None:
    start = datetime(2026, 9, 30, 9, tzinfo=UTC)  # 17:00 in Shanghai
    due = cn.add_working_time(start, 4 * H)
    assert due == datetime(2026, 10, 8, 4, tzinfo=UTC)
    assert due.tzinfo == SH
    assert due.replace(tzinfo=None) == datetime(2026, 10, 8, 12)


def test_zero_duration_is_the_start_itself(cn: BusinessCalendar) -> None:
    start = datetime(2026, 10, 3, 1, 2, 3, 4, tzinfo=UTC)  # on a holiday
    result = cn.add_working_time(start, timedelta(0))
    assert result == start
    assert result.tzinfo == SH


def test_bad_arguments_are_rejected(cn: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="negative"):
        cn.add_working_time(sh(2026, 9, 29, 9), -US)
    with pytest.raises(ValueError, match="aware"):
        cn.add_working_time(datetime(2026, 9, 29, 9), H)
    with pytest.raises(ValueError, match="aware"):
        cn.working_time_between(sh(2026, 9, 29, 9), datetime(2026, 9, 29, 10))
    with pytest.raises(ValueError, match="aware"):
        cn.is_working_time(datetime(2026, 9, 29, 10))


def test_working_time_between(cn: BusinessCalendar) -> None:
    assert cn.working_time_between(sh(2026, 9, 30, 17), sh(2026, 10, 8, 12)) == 4 * H
    assert cn.working_time_between(sh(2026, 9, 29, 11), sh(2026, 9, 29, 14)) == 2 * H
    assert cn.working_time_between(sh(2026, 9, 28, 0), sh(2026, 10, 5, 0)) == 3 * 8 * H  # Mon–Wed
    assert cn.working_time_between(sh(2026, 9, 29, 14), sh(2026, 9, 29, 11)) == timedelta(0)
    assert cn.working_time_between(sh(2026, 9, 29, 14), sh(2026, 9, 29, 14)) == timedelta(0)
    assert cn.working_time_between(sh(2026, 10, 1, 0), sh(2026, 10, 8, 0)) == timedelta(0)


@pytest.mark.parametrize(
    ("at", "working"),
    [
        (sh(2026, 9, 29, 8, 59, 59), False),
        (sh(2026, 9, 29, 9), True),
        (sh(2026, 9, 29, 11, 59, 59, 999999), True),
        (sh(2026, 9, 29, 12), False),
        (sh(2026, 9, 29, 13), True),
        (sh(2026, 9, 29, 18), False),
        (sh(2026, 10, 1, 10), False),  # National Day
        (sh(2026, 10, 4, 10), False),  # Sunday inside the holiday
        (sh(2026, 10, 10, 10), True),  # make-up Saturday
        (sh(2026, 10, 17, 10), False),  # ordinary Saturday
        (datetime(2026, 10, 10, 2, tzinfo=UTC), True),  # 10:00 in Shanghai
    ],
)
def test_is_working_time(cn: BusinessCalendar, at: datetime, working: bool) -> None:
    assert cn.is_working_time(at) is working


def test_periods_on(cn: BusinessCalendar) -> None:
    assert cn.periods_on(date(2026, 9, 29)) == OFFICE
    assert cn.periods_on(date(2026, 10, 1)) == ()
    assert cn.periods_on(date(2026, 10, 10)) == OFFICE
    assert cn.periods_on(date(2026, 10, 17)) == ()


# ---------------------------------------------------------------- the shipped files


def test_shipped_cn_calendar_2026(cn: BusinessCalendar) -> None:
    assert cn.tz == SH
    golden_week = [date(2026, 10, day) for day in range(1, 8)]
    assert all(day in cn.holidays for day in golden_week if day.weekday() < 5)
    assert all(cn.periods_on(day) == () for day in golden_week)
    assert {date(2026, 9, 20), date(2026, 10, 10)} <= cn.workdays
    assert date(2026, 10, 8) not in cn.holidays
    assert cn.day_labels[date(2026, 10, 1)] == "国庆节"
    assert cn.day_labels[date(2026, 10, 10)] == "国庆节调休"
    assert cn.makeup_hours == OFFICE


def test_shipped_cn_calendar_is_consistent(cn: BusinessCalendar) -> None:
    years = {day.year for day in cn.workdays}
    assert cn.confirmed_through == date(max(years), 12, 31)
    # confirmed years have make-up days; the year after holds only the statutory days off (unconfirmed)
    assert {day.year for day in cn.holidays} == years | {max(years) + 1}
    assert set(range(min(years), max(years) + 1)) == years
    assert max(years) >= 2026
    assert all(day.weekday() >= 5 for day in cn.workdays)
    assert not cn.holidays & cn.workdays


def test_shipped_24x7_is_always_open(shipped: dict[str, BusinessCalendar]) -> None:
    cal = shipped["24x7"]
    assert cal == always_open()
    start = sh(2026, 10, 1, 23)
    assert cal.add_working_time(start, 2 * H) == sh(2026, 10, 2, 1)
    assert cal.add_working_time(start, timedelta(minutes=90)) == sh(2026, 10, 2, 0, 30)
    assert cal.working_time_between(sh(2026, 9, 28), sh(2026, 10, 5)) == timedelta(days=7)
    assert cal.is_working_time(sh(2026, 10, 1, 0))
    assert cal.is_working_time(sh(2026, 10, 1, 23, 59, 59, 999999))
    assert cal.add_working_time(sh(2026, 1, 1), 1000 * H) == sh(2026, 1, 1) + 1000 * H


def test_complaint_sla_points_on_24x7() -> None:
    cal = always_open()
    created = datetime(2026, 11, 2, 1, tzinfo=UTC)
    assert cal.add_working_time(created, timedelta(hours=1.5)) == sh(2026, 11, 2, 10, 30)
    assert cal.add_working_time(created, 2 * H) == sh(2026, 11, 2, 11)


# ---------------------------------------------------------------- DST


def test_dst_working_hours_are_wall_clock() -> None:
    cal = berlin_office()
    # Fri 16:00 CET + 2 h: 1 h on Friday, Sunday 03-29's night shift is 01:00–04:00 wall = 2 h real, so 1 h
    # is used there and the deadline is 03:00 CEST (the clock jumps 02:00 → 03:00).
    due = cal.add_working_time(berlin(2026, 3, 27, 16), 2 * H)
    assert due == berlin(2026, 3, 29, 3)
    assert due.utcoffset() == timedelta(hours=2)
    assert due == datetime(2026, 3, 29, 1, tzinfo=UTC)
    # Monday after the change: 09:00 wall clock is now 07:00 UTC (was 08:00 UTC).
    assert cal.add_working_time(berlin(2026, 3, 27, 16), 4 * H) == datetime(2026, 3, 30, 8, tzinfo=UTC)


def test_dst_periods_are_real_elapsed_time() -> None:
    cal = berlin_office()
    night = timedelta(hours=3)
    assert cal.working_time_between(berlin(2026, 3, 22), berlin(2026, 3, 23)) == night
    assert cal.working_time_between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == night - H  # spring forward
    assert cal.working_time_between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == night + H  # fall back
    day = always_open(tz="Europe/Berlin")
    assert day.working_time_between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * H
    assert day.working_time_between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * H
    assert day.add_working_time(berlin(2026, 3, 29), 24 * H) == berlin(2026, 3, 30, 1)


def test_period_starting_in_the_dst_gap_starts_at_the_jump() -> None:
    cal = BusinessCalendar(name="gap", tz=BERLIN, weekly={6: ((time(2, 30), time(5)),)})
    # 02:30 does not exist on 2026-03-29: the period starts at 03:00 CEST (01:00 UTC).
    assert cal.add_working_time(berlin(2026, 3, 29, 0), US) == datetime(2026, 3, 29, 1, tzinfo=UTC) + US
    assert cal.working_time_between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 2 * H
    assert not cal.is_working_time(datetime(2026, 3, 29, 0, 59, tzinfo=UTC))
    assert cal.is_working_time(datetime(2026, 3, 29, 1, tzinfo=UTC))


# ---------------------------------------------------------------- construction and degenerate calendars


def test_calendar_without_working_time_raises_instead_of_looping() -> None:
    empty = BusinessCalendar(name="leer", tz=SH, weekly={})
    with pytest.raises(ValueError, match="no working time"):
        empty.add_working_time(sh(2026, 1, 1), H)
    assert empty.working_time_between(sh(2026, 1, 1), sh(2027, 1, 1)) == timedelta(0)
    assert not empty.is_working_time(sh(2026, 1, 1, 10))
    # Only a few make-up days: works until they are used up, then gives up.
    sparse = BusinessCalendar(
        name="sparse", tz=SH, weekly={}, workdays=frozenset({date(2026, 10, 10)}), makeup_hours=OFFICE
    )
    assert sparse.add_working_time(sh(2026, 1, 1), 8 * H) == sh(2026, 10, 10, 18)
    with pytest.raises(ValueError, match="no working time"):
        sparse.add_working_time(sh(2026, 1, 1), 8 * H + US)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weekly": {7: OFFICE}},
        {"weekly": {0: ((time(12), time(9)),)}},
        {"weekly": {0: ((time(9), time(12)), (time(11), time(13)))}},
        {"weekly": {0: ((time(9, tzinfo=UTC), time(12)),)}},
        {"weekly": {}, "holidays": frozenset({date(2026, 1, 1)}), "workdays": frozenset({date(2026, 1, 1)})},
    ],
)
def test_invalid_calendar_construction(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BusinessCalendar(name="x", tz=SH, **kwargs)  # type: ignore[arg-type]


def test_calendar_is_frozen_and_hashable() -> None:
    cal = always_open()
    assert hash(cal) == hash(always_open())
    with pytest.raises(TypeError):
        cal.weekly[0] = ()  # type: ignore[index]
    assert cal.periods_on(date(2026, 1, 1)) == ((time(0), END_OF_DAY),)


# ---------------------------------------------------------------- properties

STARTS = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 1, 31), timezones=st.just(UTC)
)
DURATIONS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=300))
PROPERTY_CALENDARS = {
    "cn": load_calendar(CALENDARS / "cn.yaml"),
    "berlin": berlin_office(),
    "24x7": always_open(),
}
CALENDAR_NAMES = st.sampled_from(sorted(PROPERTY_CALENDARS))
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)


@PROPERTY_SETTINGS
@given(CALENDAR_NAMES, STARTS, DURATIONS, DURATIONS)
def test_monotonic_in_duration(name: str, start: datetime, a: timedelta, b: timedelta) -> None:
    cal = PROPERTY_CALENDARS[name]
    short, long = sorted((a, b))
    assert cal.add_working_time(start, short) <= cal.add_working_time(start, long)


@PROPERTY_SETTINGS
@given(CALENDAR_NAMES, STARTS, DURATIONS, DURATIONS)
def test_additive(name: str, start: datetime, a: timedelta, b: timedelta) -> None:
    cal = PROPERTY_CALENDARS[name]
    assert cal.add_working_time(cal.add_working_time(start, a), b) == cal.add_working_time(start, a + b)


@PROPERTY_SETTINGS
@given(CALENDAR_NAMES, STARTS, DURATIONS)
def test_between_is_the_inverse(name: str, start: datetime, duration: timedelta) -> None:
    cal = PROPERTY_CALENDARS[name]
    assert cal.working_time_between(start, cal.add_working_time(start, duration)) == duration


@PROPERTY_SETTINGS
@given(CALENDAR_NAMES, STARTS, DURATIONS.filter(bool))
def test_result_is_working_time_or_a_period_end(name: str, start: datetime, duration: timedelta) -> None:
    cal = PROPERTY_CALENDARS[name]
    due = cal.add_working_time(start, duration)
    assert due > start
    assert due.tzinfo == cal.tz
    # The last microsecond before the deadline was worked: the deadline is inside a period or at its end.
    # (Subtract in UTC: Python does wall-clock arithmetic on datetimes of a DST zone.)
    assert cal.is_working_time(due.astimezone(UTC) - US)
    if not cal.is_working_time(due):
        ends = [end for _, end in cal._intervals(due.astimezone(cal.tz).date())]
        ends += [end for _, end in cal._intervals(due.astimezone(cal.tz).date() - timedelta(days=1))]
        assert due in ends


@PROPERTY_SETTINGS
@given(CALENDAR_NAMES, STARTS)
def test_is_working_time_agrees_with_between(name: str, at: datetime) -> None:
    cal = PROPERTY_CALENDARS[name]
    assert cal.is_working_time(at) is (cal.working_time_between(at, at + US) == US)


@PROPERTY_SETTINGS
@given(CALENDAR_NAMES, STARTS, STARTS)
def test_between_splits_additively(name: str, a: datetime, b: datetime) -> None:
    cal = PROPERTY_CALENDARS[name]
    low, high = sorted((a, b))
    middle = low + (high - low) / 3
    total = cal.working_time_between(low, high)
    assert total == cal.working_time_between(low, middle) + cal.working_time_between(middle, high)
    assert total <= high - low
