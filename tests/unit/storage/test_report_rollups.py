"""Which days of a period the reports read from roll-ups, and the p90 of the stays' buckets."""

from __future__ import annotations

from datetime import date, datetime

from rulesvc.storage.report_rollups import _p90, closed_before, rolled_days, split

NOW = datetime.fromisoformat("2026-12-06T00:05:00+08:00")


def test_a_day_is_closed_ten_minutes_after_it_ends() -> None:
    assert closed_before(NOW) == date(2026, 12, 5)  # 5 December ended 5 minutes ago
    assert closed_before(datetime.fromisoformat("2026-12-06T00:10:00+08:00")) == date(2026, 12, 6)


def test_the_period_is_split_into_rolled_days_and_the_rest() -> None:
    start = datetime.fromisoformat("2026-11-01T00:00:00+08:00")
    span = split(start, datetime.fromisoformat("2026-12-07T00:00:00+08:00"), NOW)
    assert span is not None and (span.first, span.last) == (date(2026, 11, 1), date(2026, 12, 5))
    assert span.cut == datetime.fromisoformat("2026-12-05T00:00:00+08:00")
    inner = split(start, datetime.fromisoformat("2026-11-20T13:00:00+08:00"), NOW)
    assert inner is not None and inner.last == date(2026, 11, 20)
    assert split(start.replace(hour=1), NOW, NOW) is None  # not a midnight: read live
    assert split(start, NOW, NOW, tz="UTC") is None  # buckets of another zone: read live
    assert split(datetime.fromisoformat("2026-12-05T00:00:00+08:00"), NOW, NOW) is None  # nothing closed
    # rule hits: the whole closed days inside any period
    assert rolled_days(start.replace(hour=1), NOW, NOW) == (date(2026, 11, 2), date(2026, 12, 5))


def test_the_p90_is_the_longest_stay_of_its_bucket() -> None:
    # ten stays: the 9th smallest is the p90 (nearest rank)
    bins = [(10.0, 8, 10.05), (20.0, 1, 20.1), (30.0, 1, 30.0)]
    assert _p90(bins, 10) == 20.1
    # the same bucket on two days: merged
    assert _p90([(10.0, 4, 10.01), (10.0, 5, 10.05), (30.0, 1, 30.0)], 10) == 10.05
