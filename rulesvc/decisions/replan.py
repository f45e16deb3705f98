"""Use case: re-plan the open timers of a calendar when a new version of it is published.

A ticket's timers are planned on the calendar versions the ticket is bound to (`TicketTimers.rebind`), so
the re-plan is a unit of work per ticket like a timer poll: claimed under the ticket's lock (`SKIP LOCKED`:
several replicas share the work, none re-plans a ticket another holds), replayed on the latest version,
stored with its new points and a decision carrying one `reschedule_timer` action per timer whose deadline
moved (`{"timer", "due_at", "previous_due_at", ...}`, into the feed and to webhooks like any action), in
one transaction per claim. A claimed ticket's timers are then planned on the new version, so it is never
claimed again: a crash (kill -9) loses only the claim in flight, which the next run takes up, and no timer
is re-planned twice. A deadline the new version puts in the past is fired by the next poll, marked late.

The publishing request re-plans in claims of `batch` (200) tickets (events on other tickets are never held for
longer than one claim); every worker's poll also takes up what is left, e.g. after a crash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from rulesvc.audit.chain import sha256_hex
from rulesvc.decisions.ports import TicketView, TicketWrite
from rulesvc.decisions.record import event_json, new_decision
from rulesvc.decisions.ticket_work import timer_write
from rulesvc.decisions.timer_ports import TimerStore
from rulesvc.delivery.notify import ACTIONS, Notifier
from rulesvc.entropy import uuid4
from rulesvc.events import MAX_EVENT_ID
from rulesvc.masking import MaskPolicy
from rulesvc.model import Decision, Event
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.calendar_versions import CalendarTimeline
from rulesvc.sla.clock import Clock
from rulesvc.sla.ticket_timers import TicketTimers

log = logging.getLogger("rulesvc.timers")

REPLANNED = "calendar.replanned"
"""The type of the event a re-plan decision records (its ticket's latest snapshot, at the re-plan time)."""
EXAMPLES = 10
YIELD_SECONDS = 0.002
"""Re-planning time between two hand-overs of the interpreter to the requests sharing it."""


class PlanningBook(Protocol):
    @property
    def calendars(self) -> Mapping[str, BusinessCalendar]: ...

    def versions(self) -> dict[str, int]: ...


@dataclass
class Replanned:
    calendar: str
    version: int
    tickets: int = 0
    moved: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "calendar": self.calendar,
            "to_version": self.version,
            "tickets": self.tickets,
            "moved": self.moved,
            "examples": self.examples,
        }


class CalendarReplanner:
    def __init__(
        self,
        store: TimerStore,
        book: PlanningBook,
        clock: Clock,
        masking: MaskPolicy,
        notifier: Notifier | None = None,
        batch: int = 200,
        lanes: int = 1,
    ) -> None:
        self.store = store
        self.book = book
        self.clock = clock
        self.masking = masking
        self.notifier = notifier
        self.batch = batch
        self.lanes = lanes
        self._lock = threading.Lock()
        self._yielded = time.perf_counter()

    def latest(self, calendar: str) -> int | None:
        found = self.book.calendars.get(calendar)
        return found.version if isinstance(found, CalendarTimeline) else None

    def replan(self, calendar: str, claims: int | None = None, lanes: int | None = None) -> Replanned:
        """Re-plan every open timer on `calendar` still planned on an earlier version (at most `claims`
        claims of `batch` tickets; None: until none is left), in `lanes` concurrent claim loops (each its own
        transaction and connection; `SKIP LOCKED` keeps them apart)."""
        version = self.latest(calendar)
        result = Replanned(calendar, version or 0)
        if version is None or version < 2:
            return result
        lanes = max(1, lanes if lanes is not None else self.lanes)
        if lanes == 1 or claims is not None:
            self._loop(calendar, version, claims, result)
            return result
        with ThreadPoolExecutor(lanes, thread_name_prefix="replan") as pool:
            for future in [pool.submit(self._loop, calendar, version, None, result) for _ in range(lanes)]:
                future.result()
        return result

    def _loop(self, calendar: str, version: int, claims: int | None, result: Replanned) -> None:
        done = 0
        while claims is None or done < claims:
            now = self.clock.now()
            found = Replanned(calendar, version)
            batch = self.store.replan(
                calendar,
                version,
                now,
                self.batch,
                partial(self._prepare, calendar=calendar, now=now, result=found),
            )
            done += 1
            with self._lock:  # counted once the claim committed
                result.tickets += batch.tickets
                result.moved += found.moved
                result.examples.extend(found.examples[: max(0, EXAMPLES - len(result.examples))])
            if batch.actions and self.notifier is not None:
                self.notifier.publish(ACTIONS)
            if batch.tickets < self.batch or len(batch.refused) == batch.tickets:
                break  # none left, or only tickets refused for not matching the chain (never re-planned)

    def replan_pending(self) -> list[Replanned]:
        """One claim for each calendar that still has timers planned on an older version (a worker's poll)."""
        results = []
        for name in sorted(self.book.calendars):
            version = self.latest(name)
            if version is not None and version > 1 and self.store.replan_pending(name, version):
                results.append(self.replan(name, claims=1))
        return results

    def _prepare(self, view: TicketView, calendar: str, now: datetime, result: Replanned) -> TicketWrite:
        # The interpreter is shared with the requests (the publishing request runs the re-plan): giving it
        # up between tickets every `YIELD_SECONDS` lets a waiting request run then rather than after a whole
        # switch interval (5 ms), and costs one system call per `YIELD_SECONDS` of work.
        if time.perf_counter() - self._yielded >= YIELD_SECONDS:
            time.sleep(0)
            self._yielded = time.perf_counter()
        timers = TicketTimers(view.ticket_id, view.timers, self.book.calendars, view.timeline)
        actions = timers.rebind(calendar, now)
        records = []
        if actions:
            snapshot = dict(view.snapshot) or {"id": view.ticket_id, "kind": view.kind}
            event_id = f"replan:{calendar}:v{result.version}:{view.ticket_id}"
            if len(event_id) > MAX_EVENT_ID:
                event_id = f"replan:{sha256_hex(event_id)}"
            event = Event(event_id, REPLANNED, now, snapshot)
            decision = Decision(event, tuple(actions))
            records.append(
                new_decision(
                    decision_id=str(uuid4()),
                    body=event_json(event),
                    event=event,
                    decision=decision,
                    decided_at=now,
                    versions=self.book.versions(),
                    masking=self.masking,
                )
            )
            result.moved += len(actions)
            for action in actions[: max(0, EXAMPLES - len(result.examples))]:
                result.examples.append({"ticket_id": view.ticket_id, **action.to_json()})
        return timer_write(timers, now, records)
