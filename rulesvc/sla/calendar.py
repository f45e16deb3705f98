"""Business calendars: when is it working time, and what instant is N working hours after T.

Pure functions of (calendar, instants): no wall clock, no I/O (files are read by
`rulesvc.sla.calendar_file`).

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
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from rulesvc.errors import Location

__all__ = [
    "END_OF_DAY",
    "BusinessCalendar",
    "Period",
    "always_open",
    "end_offset",
    "format_period",
    "time_offset",
]

Period = tuple[time, time]

END_OF_DAY = time(0)
"""As a period end: 24:00."""

MAX_IDLE_DAYS = 3 * 366
"""A search for working time gives up after this many consecutive days without any."""

_ONE_DAY = timedelta(days=1)
_ONE_MICROSECOND = timedelta(microseconds=1)


def end_offset(end: time) -> timedelta:
    """Offset of a period end from midnight; `time(0)` is 24:00."""
    if end == END_OF_DAY:
        return _ONE_DAY
    return time_offset(end)


def time_offset(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def format_period(period: Period) -> str:
    start, end = period
    end_text = "24:00" if end == END_OF_DAY else end.isoformat(timespec="minutes")
    return f"{start.isoformat(timespec='minutes')}-{end_text}"


def _check_periods(periods: tuple[Period, ...], what: str) -> None:
    previous_end = timedelta(0)
    for index, (start, end) in enumerate(periods):
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(f"{what}: period times must be naive wall-clock times")
        if time_offset(start) >= end_offset(end):
            raise ValueError(f"{what}: period {format_period((start, end))} does not end after it starts")
        if index and time_offset(start) < previous_end:
            raise ValueError(f"{what}: periods must be sorted and must not overlap")
        previous_end = end_offset(end)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (with a UTC offset), got {value!r}")


@dataclass(frozen=True)
class BusinessCalendar:
    """Working time in one time zone. Built by `calendar_file.load_calendar`, `always_open` or directly.

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
        # Memoised per calendar (immutable): a re-plan or a poll computes the same (start, duration) for
        # every timer started at the same instant with the same working time left.
        cache: dict[tuple[datetime, timedelta], datetime] = self.__dict__.setdefault("_sum_cache", {})
        found = cache.get((start, duration))
        if found is None:
            if len(cache) > 20_000:
                cache.clear()
            found = cache[(start, duration)] = self._add_working_time(start, duration)
        return found

    def _add_working_time(self, start: datetime, duration: timedelta) -> datetime:
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
