"""The versions in force in this process: an immutable `BookTimeline`, swapped atomically on reload.

`BookRegistry.refresh()` rebuilds the timeline from the store when the publication counter moved and
replaces the reference in one assignment; readers never lock. A decision takes one book at its start
(`LiveBook.book_for`) and finishes on it, whatever is swapped in meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from rulesvc.lang.model import KindSchema
from rulesvc.lifecycle.ports import RulesetStore
from rulesvc.lifecycle.timeline import BookFactory, BookTimeline, build_timeline, latest
from rulesvc.model import Decision, Event
from rulesvc.rulebook import RuleBook
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.clock import Clock

log = logging.getLogger("rulesvc.rulesets")

ReloadListener = Callable[[dict[str, int], float | None], None]
"""Told the ruleset versions in force now after each reload, and the seconds since the newest publication
the reload brought in (None for the state at `listen` time): the reload metrics."""


class BookRegistry:
    """The timeline of ruleset and calendar versions (`calendar_store`: calendar versions, if versioned)."""

    def __init__(
        self, store: RulesetStore, factory: BookFactory, calendar_store: RulesetStore | None = None
    ) -> None:
        self.store = store
        self.calendar_store = calendar_store
        self.factory = factory
        self._timeline = build_timeline(factory, [])
        self._refresh_lock = threading.Lock()
        self._listeners: list[ReloadListener] = []

    @property
    def timeline(self) -> BookTimeline:
        return self._timeline

    def listen(self, listener: ReloadListener) -> None:
        """Call `listener` now (versions in force) and after every reload."""
        self._listeners.append(listener)
        listener(in_force(self._timeline), None)

    def _reloaded(self, timeline: BookTimeline) -> None:
        now = datetime.now(UTC)
        published = [r.published_at for r in (*timeline.versions, *timeline.calendar_versions)]
        lag = (now - max(published)).total_seconds() if published else None
        versions = in_force(timeline, now)
        for listener in self._listeners:
            try:
                listener(versions, lag)
            except Exception:
                log.exception("reload listener failed")

    def refresh(self) -> bool:
        """Reload if anything was published since the last load; True when a new timeline is in place."""
        with self._refresh_lock:
            if self.store.generation() == self._timeline.generation:
                return False
            calendars = self.calendar_store.all_versions() if self.calendar_store is not None else []
            timeline = build_timeline(self.factory, self.store.all_versions(), calendars)
            if timeline.generation == self._timeline.generation:
                return False
            self._timeline = timeline
        log.info(
            "rulesets reloaded (publication %d): %s",
            timeline.generation,
            ", ".join(
                f"{name} v{record.version}"
                for name, record in sorted([*timeline.latest().items(), *latest(calendars).items()])
            ),
        )
        self._reloaded(timeline)
        return True


def in_force(timeline: BookTimeline, now: datetime | None = None) -> dict[str, int]:
    """Ruleset name -> the version deciding events occurring now."""
    return {name: r.version for name, r in timeline.in_force(now or datetime.now(UTC)).items()}


class LiveBook:
    """The service's evaluator: each event is decided on the versions in force at its `occurred_at`.

    An event claiming to occur in the future is decided as of now: a version scheduled for later must not
    decide live traffic before its time.
    """

    def __init__(self, registry: BookRegistry, clock: Clock) -> None:
        self.registry = registry
        self.clock = clock

    @property
    def calendars(self) -> Mapping[str, BusinessCalendar]:
        """What timers are planned on: each calendar across its versions (`CalendarTimeline`); a ticket's
        timers use the versions the ticket is bound to until they are re-planned."""
        return self.registry.timeline.planning

    def book_for(self, event: Event) -> RuleBook:
        return self.registry.timeline.at(min(event.occurred_at, self.clock.now()))

    def evaluate(self, event: Event) -> Decision:
        return self.book_for(event).evaluate(event)

    @property
    def kinds(self) -> Mapping[str, KindSchema]:
        return self.registry.factory.kinds

    def versions(self) -> dict[str, int]:
        return self.registry.timeline.at(self.clock.now()).versions()

    def all_refs(self) -> list[str]:
        return self.registry.timeline.at(self.clock.now()).all_refs()
