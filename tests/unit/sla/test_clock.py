"""Injected clocks: the system clock and the virtual clock used by simulation and tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rulesvc.sla.clock import Clock, SystemClock, VirtualClock

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def test_system_clock_is_aware_utc() -> None:
    clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after
    assert isinstance(clock, Clock)


def test_virtual_clock_moves_only_when_told() -> None:
    start = datetime(2026, 9, 30, 17, tzinfo=SH)
    clock = VirtualClock(start)
    assert isinstance(clock, Clock)
    assert clock.now() == start
    assert clock.now() == clock.now()
    assert clock.now().utcoffset() == timedelta(0)
    clock.advance(timedelta(hours=1, microseconds=5))
    assert clock.now() == start + timedelta(hours=1, microseconds=5)
    clock.set(datetime(2026, 10, 8, 12, tzinfo=SH))
    assert clock.now() == datetime(2026, 10, 8, 4, tzinfo=UTC)
    clock.set(clock.now())  # staying put is fine
    clock.advance(timedelta(0))
    assert clock.now() == datetime(2026, 10, 8, 4, tzinfo=UTC)


def test_virtual_clock_never_goes_backwards() -> None:
    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(microseconds=-1))
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC)


def test_virtual_clock_requires_aware_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        VirtualClock(datetime(2026, 1, 1))
    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2026, 1, 2))


def test_virtual_clock_advances_real_time_across_dst() -> None:
    clock = VirtualClock(datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN))  # 30 min before the jump
    clock.advance(timedelta(hours=1))
    assert clock.now().astimezone(BERLIN) == datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
