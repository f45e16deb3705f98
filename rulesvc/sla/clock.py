"""Time is injected: code that needs "now" receives a `Clock`; nothing deep in the logic reads the wall clock.

`SystemClock` is the production clock; `VirtualClock` drives simulation, replay and tests. Both return aware
UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, as an aware datetime."""
        ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock that moves only when told to, and never backwards.

    The instant is kept in UTC so that `advance` adds real elapsed time even across a DST change (adding a
    timedelta to a datetime in a DST zone would add wall-clock time instead).
    """

    def __init__(self, start: datetime) -> None:
        _require_aware(start)
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        """Move to `at`; moving backwards raises ValueError (staying put is fine)."""
        _require_aware(at)
        target = at.astimezone(UTC)
        if target < self._now:
            raise ValueError(
                f"virtual clock cannot go backwards: now {self._now.isoformat()}, asked {at.isoformat()}"
            )
        self._now = target

    def advance(self, delta: timedelta) -> None:
        """Move forward by `delta`; a negative delta raises ValueError."""
        if delta < timedelta(0):
            raise ValueError(f"virtual clock cannot go backwards: advance({delta})")
        self._now += delta

    def __repr__(self) -> str:
        return f"VirtualClock({self._now.isoformat()})"


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"clock times must be aware datetimes (with a UTC offset), got {value!r}")
