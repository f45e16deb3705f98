"""Use case: re-plan the open timers of a calendar when a new version of it is published.

A re-plan works in *claims*: up to `batch` (200) tickets having an open timer on the calendar planned on an
older version, locked with `SKIP LOCKED` (several workers share the work, none re-plans a ticket another
holds) and stored in one transaction. What one claim stores:

- **the timer rows, set-based.** A timer's row carries what planning needs (calendar, calendar version,
  working time consumed, warning offsets, paused or running), so its new points are computed from the row,
  memoised per shape (calendar version, anchor, working time left, warnings), and every re-planned row of
  the claim is written by one UPDATE. The calendar version a ticket is bound to is its timer rows'
  (sealed, `rulesvc.storage.ticket_seals`): the ticket's timeline is not rewritten. A ticket whose rows do
  not suffice is re-planned through its journal (`TicketTimers.rebind`) in the same claim: a journal entry
  still ahead of the clock (`next_point` empty), or working time consumed across the instant from which
  the new version changes anything (a version effective in the past);
- **one record for the claim**, the audited step: `calendar.replanned` with the calendar, the versions it
  moved timers from and to, how many tickets and timers, and one `reschedule_timer` action per moved
  deadline (`{"timer", "due_at", "previous_due_at", ...}`) with that action's own ticket id
  (`action_tickets`); each becomes a feed record (and webhook) carrying its ticket's id, vouched for by the
  claim's record (`rulesvc.audit.evidence.action_problem`), and the ticket's decisions list shows the claim
  (found by its feed record). Its one chain entry holds the record's digest, the count and versions, and
  re-seals every claimed ticket.

A claimed ticket's timers are then planned on the new version, so it is never claimed again: a crash (kill
-9) loses only the claim in flight, which the next run takes up, and no timer is re-planned twice. A
deadline the new version puts in the past is fired by the next poll, marked late.

The publishing request re-plans up to a small budget (`inline_tickets`, `inline_seconds`), so small
deployments see the feed rows in its answer; the worker's polls re-plan the rest (and whatever a crash
left), claim after claim, in their own process when the worker runs as one (`rulesvc worker`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from rulesvc.audit.chain import sha256_hex
from rulesvc.audit.evidence import ACTION_TICKETS
from rulesvc.decisions.ports import NewDecision, TicketView, TicketWrite
from rulesvc.decisions.record import decision_payload, record_json
from rulesvc.decisions.ticket_work import timer_write
from rulesvc.decisions.timer_ports import ReplanBatch, TimerStore
from rulesvc.delivery.notify import ACTIONS, Notifier
from rulesvc.entropy import token_hex, uuid4
from rulesvc.masking import MaskPolicy
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.calendar_versions import CalendarTimeline
from rulesvc.sla.clock import Clock
from rulesvc.sla.ticket_timers import ScheduledTimer, TicketTimers, reschedule, schedule
from rulesvc.sla.timers import PAUSED, RUNNING

log = logging.getLogger("rulesvc.timers")

REPLANNED = "calendar.replanned"
"""The type of the event a re-plan claim's record records."""
EXAMPLES = 10
YIELD_SECONDS = 0.002
"""Re-planning time between two hand-overs of the interpreter to the requests sharing it."""
INLINE_TICKETS = 1_000
INLINE_SECONDS = 1.0
"""What the publishing request re-plans itself at most (then it answers; the worker does the rest)."""
_MEMO = 50_000


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
    pending: int = 0
    """Open timers still planned on an older version when this run stopped (left to the worker)."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "calendar": self.calendar,
            "to_version": self.version,
            "tickets": self.tickets,
            "moved": self.moved,
            "examples": self.examples,
            "pending": self.pending,
        }
        if self.pending:
            data["message"] = (
                f"其余 {self.pending} 个计时器由后台 worker 继续重新计划；每批一条 calendar.replanned 决策，"
                "每个改变的截止时间一条 reschedule_timer 动作"
            )
            data["follow"] = "GET /v1/decisions?action_type=reschedule_timer"
        return data


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
        yields: bool = True,
    ) -> None:
        self.store = store
        self.book = book
        self.clock = clock
        self.masking = masking
        self.notifier = notifier
        self.batch = batch
        self.lanes = lanes
        self.yields = yields
        """Give up the interpreter every `YIELD_SECONDS` (`give_way`): when requests share it (the
        publishing request, a worker inside `rulesvc serve`); not in a worker process of its own."""
        self.journal_only = False
        """Re-plan every ticket through its journal (the per-ticket way; benchmarks' baseline)."""
        self._lock = threading.Lock()
        self._yielded = time.perf_counter()
        self._memo: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def latest(self, calendar: str) -> int | None:
        found = self.book.calendars.get(calendar)
        return found.version if isinstance(found, CalendarTimeline) else None

    def replan(
        self,
        calendar: str,
        claims: int | None = None,
        lanes: int | None = None,
        *,
        tickets: int | None = None,
        seconds: float | None = None,
    ) -> Replanned:
        """Re-plan the open timers on `calendar` still planned on an earlier version, claim after claim
        of `batch` tickets, until none is left or a limit is reached (`claims`; `tickets` re-planned;
        `seconds` spent: checked after each claim). `lanes` concurrent claim loops (each its own
        transaction and connection; `SKIP LOCKED` keeps them apart). With a `tickets` budget, `pending`
        counts what is left (one count over the index; the workers' polls do not need it)."""
        version = self.latest(calendar)
        result = Replanned(calendar, version or 0)
        if version is None or version < 2:
            return result
        lanes = max(1, lanes if lanes is not None else self.lanes)
        deadline = time.perf_counter() + seconds if seconds is not None else None
        if lanes == 1 or claims is not None:
            self._loop(calendar, version, claims, tickets, deadline, result)
        else:
            with ThreadPoolExecutor(lanes, thread_name_prefix="replan") as pool:
                loops = [
                    pool.submit(self._loop, calendar, version, None, tickets, deadline, result)
                    for _ in range(lanes)
                ]
                for future in loops:
                    future.result()
        if tickets is not None:  # the publishing request's budget: say what it leaves to the workers
            result.pending = self.store.replan_count(calendar, version)
        return result

    def _loop(
        self,
        calendar: str,
        version: int,
        claims: int | None,
        tickets: int | None,
        deadline: float | None,
        result: Replanned,
    ) -> None:
        done = 0
        while claims is None or done < claims:
            if tickets is not None and result.tickets >= tickets:
                break
            now = self.clock.now()
            claim = Claim(self, calendar, version, now)
            batch = self.store.replan(calendar, version, now, self.batch, claim)
            done += 1
            with self._lock:  # counted once the claim committed
                result.tickets += batch.tickets - len(batch.refused)
                result.moved += batch.moved
                result.examples.extend(claim.examples[: max(0, EXAMPLES - len(result.examples))])
            if batch.moved and self.notifier is not None:
                self.notifier.publish(ACTIONS)
            if batch.tickets < self.batch or len(batch.refused) == batch.tickets:
                break  # none left, or only tickets refused for not matching the chain (never re-planned)
            if deadline is not None and time.perf_counter() >= deadline:
                break

    def replan_pending(self, seconds: float | None = None) -> list[Replanned]:
        """Claims for each calendar that still has timers planned on an older version (a worker's poll):
        until none is left, or for `seconds` per calendar (None: one claim)."""
        results = []
        for name in sorted(self.book.calendars):
            version = self.latest(name)
            if version is not None and version > 1 and self.store.replan_pending(name, version):
                if seconds is None:
                    results.append(self.replan(name, claims=1))
                else:
                    results.append(self.replan(name, seconds=seconds))
        return results

    def give_way(self) -> None:
        """The interpreter is shared with requests when the re-plan runs in the API's process: giving it up
        every `YIELD_SECONDS` lets a waiting request run then rather than after a whole switch interval
        (5 ms), and costs one system call per `YIELD_SECONDS` of work."""
        if self.yields and time.perf_counter() - self._yielded >= YIELD_SECONDS:
            time.sleep(0)
            self._yielded = time.perf_counter()

    def planned(self, timer: ScheduledTimer, calendar: BusinessCalendar) -> ScheduledTimer:
        """`timer` planned on `calendar` (its points memoised per shape: in service many timers started
        at the same instant with the same working time left, e.g. imports and batch jobs)."""
        state = timer.state
        key = (
            calendar,
            state.anchor_at,
            state.duration,
            state.consumed,
            state.warnings,
            state.fired,
            state.status,
        )
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) > _MEMO:
                self._memo.clear()
            fresh = schedule(state, timer.generation, calendar, timer.stopped_at)
            found = self._memo[key] = (fresh.next_fire_at, fresh.next_point, fresh.due_at, fresh.provisional)
        next_at, point, due, provisional = found
        return replace(
            timer,
            next_fire_at=next_at,
            next_point=point,
            due_at=due,
            provisional=provisional,
            calendar_version=calendar.version,
        )


class Claim:
    """What one claim makes of its locked tickets (`rulesvc.decisions.timer_ports.ClaimPlan`)."""

    def __init__(self, replanner: CalendarReplanner, calendar: str, version: int, now: datetime) -> None:
        self.replanner = replanner
        self.calendar = calendar
        self.version = version
        self.now = now
        latest = replanner.book.calendars[calendar]
        assert isinstance(latest, CalendarTimeline)
        self.latest: CalendarTimeline = latest
        self.from_versions: set[int] = set()
        self.examples: list[dict[str, Any]] = []
        self._changes: dict[int, datetime] = {}

    def changes_from(self, version: int) -> datetime:
        """The first instant at which the latest version plans differently from `version` (the earliest
        effective time of the versions published after it)."""
        found = self._changes.get(version)
        if found is None:
            found = self._changes[version] = min(at for at, c in self.latest.versions if c.version > version)
        return found

    def timers(
        self, ticket_id: str, timers: Sequence[ScheduledTimer]
    ) -> tuple[list[ScheduledTimer], list[Mapping[str, Any]]] | None:
        self.replanner.give_way()
        if self.replanner.journal_only:
            return None
        stale = [
            t
            for t in timers
            if t.state.calendar == self.calendar
            and t.state.status in (RUNNING, PAUSED)
            and (t.calendar_version or 0) < self.version
        ]
        for timer in stale:
            if timer.calendar_version is None or (
                timer.next_fire_at is not None and timer.next_point is None
            ):
                return None  # planned before versions were recorded, or a journal entry still ahead
            if timer.state.consumed and timer.state.anchor_at > self.changes_from(timer.calendar_version):
                return None  # working time consumed where the new version changes the calendar
        rows: list[ScheduledTimer] = []
        actions: list[Mapping[str, Any]] = []
        for timer in stale:
            self.from_versions.add(timer.calendar_version or 0)
            fresh = self.replanner.planned(timer, self.latest)
            rows.append(fresh)
            if timer.state.status == RUNNING and timer.due_at is not None and fresh.due_at != timer.due_at:
                assert fresh.due_at is not None
                actions.append(self._moved(ticket_id, reschedule(timer, fresh.due_at, self.latest, self.now)))
        return rows, actions

    def again(self, ticket_id: str, actions: Sequence[Mapping[str, Any]]) -> None:
        self.replanner.give_way()
        for action in actions[: max(0, EXAMPLES - len(self.examples))]:
            self.examples.append({"ticket_id": ticket_id, **action})

    def ticket(self, view: TicketView) -> tuple[TicketWrite, list[Mapping[str, Any]]]:
        self.replanner.give_way()
        self.from_versions.update(
            t.calendar_version or 0 for t in view.timers if t.state.calendar == self.calendar
        )
        timers = TicketTimers(view.ticket_id, view.timers, self.replanner.book.calendars, view.timeline)
        actions = [self._moved(view.ticket_id, a) for a in timers.rebind(self.calendar, self.now)]
        return timer_write(timers, self.now, []), actions

    def _moved(self, ticket_id: str, action: Any) -> Mapping[str, Any]:
        shown: dict[str, Any] = action.to_json()
        if len(self.examples) < EXAMPLES:
            self.examples.append({"ticket_id": ticket_id, **shown})
        return shown

    def record(self, moves: Sequence[tuple[str, Mapping[str, Any]]], tickets: int) -> NewDecision:
        decision_id = str(uuid4())
        event_id = f"replan:{self.calendar}:v{self.version}:{decision_id}"
        if len(event_id) > 200:
            event_id = f"replan:{sha256_hex(event_id)}"
        at = self.now.isoformat()
        step = {
            "calendar": self.calendar,
            "from_versions": sorted(self.from_versions),
            "to_version": self.version,
            "ticket_count": tickets,
            "moved": len(moves),
        }
        body = {"event_id": event_id, "type": REPLANNED, "occurred_at": at, **step}
        actions = [action for _, action in moves]  # shared by tickets planned alike: written once
        tickets_of = [ticket_id for ticket_id, _ in moves]
        record: dict[str, Any] = {
            "decision_id": decision_id,
            "event_id": event_id,
            "ticket_id": "",
            "decided_at": at,
            "event": body,
            "actions": actions,
            ACTION_TICKETS: tickets_of,
            "fired": [],
            "versions": self.replanner.book.versions(),
            "trace": [],
        }
        record_text = record_json(record)
        clear = record_json(body)
        salt = token_hex(16)
        digest = sha256_hex(salt + clear)
        payload = decision_payload(decision_id, event_id, "", sha256_hex(record_text), digest)
        return NewDecision(
            decision_id=decision_id,
            event_id=event_id,
            ticket_id="",
            decided_at=self.now,
            record_text=record_text,
            clear_input_text=clear,
            input_salt=salt,
            input_digest=digest,
            actions=actions,
            audit_payload={**payload, **step},
            occurred_at=self.now,
            action_tickets=tickets_of,
            record=record,
        )


__all__ = ["EXAMPLES", "REPLANNED", "CalendarReplanner", "Claim", "PlanningBook", "ReplanBatch", "Replanned"]
