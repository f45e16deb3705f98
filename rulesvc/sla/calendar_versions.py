"""Working time across a calendar's published versions: each instant is measured on the version in force
then (a version takes effect at its `effective_at`; at an instant the highest-numbered version already
effective is in force, as for rulesets).

Timers are planned on a `CalendarTimeline`, so publishing a version re-plans them exactly as the issue
asks: the working time a timer consumed before the new version takes effect was measured on the old one
and stays what it was; every point after it is computed on the new one. A ticket's replay is a pure
function of its journal *and* the calendar versions it is bound to (`upto`), so replaying it again later
gives the same points (a re-plan is never undone by a later replay).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime

from rulesvc.sla.calendar import BusinessCalendar


@dataclass(frozen=True, eq=False)
class CalendarTimeline(BusinessCalendar):
    """A calendar whose days are worked as the version in force at each instant says. Its own fields
    (name, zone, `version`, `confirmed_through`, …) are those of its highest-numbered version."""

    versions: tuple[tuple[datetime, BusinessCalendar], ...] = field(default=(), repr=False)
    """(effective_at, calendar numbered `calendar.version`), any order."""
    segments: tuple[tuple[datetime, BusinessCalendar], ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "segments", _segments(self.versions))

    @staticmethod
    def of(versions: Sequence[tuple[datetime, BusinessCalendar]]) -> CalendarTimeline:
        if not versions:
            raise ValueError("a calendar timeline needs at least one version")
        head = max((c for _, c in versions), key=lambda c: c.version)
        values = {f.name: getattr(head, f.name) for f in fields(BusinessCalendar) if f.init}
        return CalendarTimeline(**values, versions=tuple(versions))

    def upto(self, version: int | None) -> CalendarTimeline:
        """The timeline as it was when `version` was the latest version (None: as it is)."""
        if version is None or version >= self.version:
            return self
        cache: dict[int, CalendarTimeline] = self.__dict__.setdefault("_upto_cache", {})
        found = cache.get(version)
        if found is None:  # one per version: its working intervals are memoised like any calendar's
            kept = [(at, c) for at, c in self.versions if c.version <= version]
            found = cache[version] = CalendarTimeline.of(kept or [min(self.versions, key=_number)])
        return found

    def in_force(self, at: datetime) -> BusinessCalendar:
        current = self.segments[0][1]
        for start, calendar in self.segments[1:]:
            if start > at:
                break
            current = calendar
        return current

    def is_provisional(self, at: datetime) -> bool:
        return self.in_force(at).is_provisional(at)

    def _compute_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        if len(self.segments) == 1:
            return self.segments[0][1]._intervals(day)
        result: list[tuple[datetime, datetime]] = []
        for index, (start, calendar) in enumerate(self.segments):
            end = self.segments[index + 1][0] if index + 1 < len(self.segments) else None
            for low, high in calendar._intervals(day):
                low = low if index == 0 else max(low, start)
                high = high if end is None else min(high, end)
                if high > low:
                    result.append((low, high))
        return tuple(result)


def _number(item: tuple[datetime, BusinessCalendar]) -> int:
    return item[1].version


def _segments(
    versions: Sequence[tuple[datetime, BusinessCalendar]],
) -> tuple[tuple[datetime, BusinessCalendar], ...]:
    """(start, version in force from start) for each instant a version takes effect, in time order; a
    version superseded before it took effect never gets a segment."""
    result: list[tuple[datetime, BusinessCalendar]] = []
    for start in sorted({at for at, _ in versions}):
        current = max((c for at, c in versions if at <= start), key=lambda c: c.version)
        if not result or result[-1][1] is not current:
            result.append((start, current))
    return tuple(result)
