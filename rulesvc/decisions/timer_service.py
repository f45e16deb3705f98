"""Use case of SLA timers: fire due timer points (feed the timer fact with the ticket's latest snapshot into
the engine, store the timer's new state, the decision and its actions in one transaction). Events change
timers through `rulesvc.decisions.ticket_work`, run by the decision store in the event's own transaction.

Depends only on ports: a `TimerStore`, an evaluator (the `RuleBook`), a `Clock`, a `MaskPolicy` and a
`Notifier`. Exactly-once firing is the store's job (see `rulesvc.storage.timer_store`); what fires and what
changes is decided here by the pure `TicketTimers`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from rulesvc.audit.chain import sha256_hex
from rulesvc.decisions.ports import TicketView, TicketWrite
from rulesvc.decisions.record import event_json, new_decision
from rulesvc.decisions.ticket_work import assigned_group, timer_write
from rulesvc.decisions.timer_ports import TimerStore
from rulesvc.delivery.notify import ACTIONS, Notifier
from rulesvc.entropy import uuid4
from rulesvc.errors import RuleRuntimeError
from rulesvc.events import MAX_EVENT_ID
from rulesvc.masking import MaskPolicy
from rulesvc.model import Decision, Event
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.clock import Clock
from rulesvc.sla.simulation import timer_event
from rulesvc.sla.ticket_timers import TicketTimers
from rulesvc.tracing import EVALUATE, NO_TRACING, TIMER_FIRE, Tracer, request_scope

log = logging.getLogger("rulesvc.timers")

MAX_POINTS_PER_TICKET = 50
"""A poll fires at most this many points of one ticket (guards against rules restarting timers forever)."""


class DecidingBook(Protocol):
    def evaluate(self, event: Event) -> Decision: ...

    def versions(self) -> dict[str, int]: ...


class TimerEvaluator(Protocol):
    @property
    def calendars(self) -> Mapping[str, BusinessCalendar]:
        """The calendars timers are planned on (the versions in force now)."""
        ...

    def book_for(self, event: Event) -> DecidingBook:
        """The rulesets deciding `event` (in force at its time): one snapshot evaluates it and names the
        versions recorded, whatever a reload does meanwhile."""
        ...


@dataclass(frozen=True)
class PollResult:
    tickets: int
    decisions: int
    actions: int
    late_by: list[float]
    """Seconds between each fired point's scheduled time and its firing."""
    refused: int = 0
    """Tickets whose state did not match the chain: not fired (an alert each time)."""
    rule_errors: tuple[tuple[str, str], ...] = ()
    """(ruleset, code) of each ticket whose firing failed on a rule error (retried later)."""


class TimerService:
    def __init__(
        self,
        store: TimerStore,
        book: TimerEvaluator,
        clock: Clock,
        masking: MaskPolicy,
        notifier: Notifier | None = None,
        engine_lock: threading.Lock | None = None,
        retry_delay: timedelta = timedelta(minutes=1),
        tracer: Tracer = NO_TRACING,
    ) -> None:
        self.store = store
        self.book = book
        self.clock = clock
        self.masking = masking
        self.notifier = notifier
        # Shared with the DecisionService of the same process: the engine evaluates one event at a time.
        self.engine_lock = engine_lock or threading.Lock()
        self.retry_delay = retry_delay
        self.tracer = tracer
        """A span `rulesvc.timer.fire` per ticket fired, `rulesvc.evaluate` per point (`rulesvc.tracing`)."""

    # -- firing -------------------------------------------------------------------------------------------

    def fire_due(self, limit: int = 100) -> PollResult:
        """One claim: fire every due point of up to `limit` tickets (those not locked elsewhere)."""
        now = self.clock.now()
        late: list[float] = []
        errors: list[tuple[str, str]] = []

        tracer = self.tracer

        def prepare(view: TicketView) -> TicketWrite:
            with request_scope(), tracer.span(TIMER_FIRE) as span:
                write = self._fire_safely(view, now, errors)
                late.extend(write.late_by)
                if tracer.enabled:
                    span.set("rulesvc.ticket_id", self.masking.mask_text(view.ticket_id))
                    span.set("rulesvc.kind", view.kind)
                    span.set("rulesvc.decision_count", len(write.decisions))
                    span.set("rulesvc.decision_id", [d.decision_id for d in write.decisions])
                    span.set("rulesvc.action_count", sum(len(d.actions) for d in write.decisions))
                return write

        batch = self.store.fire_due(now, limit, prepare)
        if batch.actions:
            self._notify(ACTIONS)
        return PollResult(
            batch.tickets, len(batch.decisions), batch.actions, late, len(batch.refused), tuple(errors)
        )

    def fire_ticket(self, view: TicketView, now: datetime) -> TicketWrite:
        """The decisions of every point of this ticket that its timeline reaches by `now` and that was not
        fired yet, in event-time order, and the new timer state."""
        timers = TicketTimers(view.ticket_id, view.timers, self.book.calendars, view.timeline)
        snapshot = dict(view.snapshot) or {"id": view.ticket_id, "kind": view.kind}
        records = []
        late: list[float] = []
        group: str | None = None
        for _ in range(MAX_POINTS_PER_TICKET):
            reached = timers.next_due(now)
            if reached is None:
                break
            name, point, point_at = reached.timer, reached.point, reached.at
            state = timers.state(name, now)
            assert state is not None
            event = timer_event(state, point, now, point_at, snapshot)
            event_id = event.event_id
            if reached.generation > 1:
                event_id += f"#{reached.generation}"
            again = timers.emissions(reached)
            if again:  # fired before, retracted by a late event, reached again
                event_id += f"~{again}"
            if len(event_id) > MAX_EVENT_ID:  # a long ticket id: keep one stable id per point, shorter
                event_id = f"timer:{sha256_hex(event_id)}"
            event = replace(event, event_id=event_id)
            book = self.book.book_for(event)
            with self.tracer.span(EVALUATE) as span:
                with self.engine_lock:
                    decision = book.evaluate(event)
                if self.tracer.enabled:
                    span.set("rulesvc.timer", name)
                    span.set("rulesvc.point", point)
                    span.set("rulesvc.late_seconds", (now - point_at).total_seconds())
                    versions = {f.ruleset: f.version for f in decision.fired}
                    span.set("rulesvc.ruleset", sorted(versions))
                    span.set("rulesvc.ruleset_version", [versions[n] for n in sorted(versions)])
            decision_id = str(uuid4())
            timers.fire(reached, decision_id)
            decision = timers.apply(decision, point_at, now)
            late.append((now - point_at).total_seconds())
            fired_by = {
                "timer": name,
                "point": point,
                "due_at": point_at.isoformat(),
                "late_by": (now - point_at).total_seconds(),
            }
            records.append(
                new_decision(
                    decision_id=decision_id,
                    body=event_json(event),
                    event=event,
                    decision=decision,
                    decided_at=now,
                    versions=book.versions(),
                    masking=self.masking,
                    actions=[{**a, "fired_by": fired_by} for a in decision.actions_json()],
                )
            )
            group = assigned_group(decision) or group
        write = timer_write(timers, now, records, group=group)
        return replace(write, late_by=late)

    def _fire_safely(
        self, view: TicketView, now: datetime, errors: list[tuple[str, str]] | None = None
    ) -> TicketWrite:
        """`fire_ticket`, except that a ticket whose firing fails is retried after `retry_delay` instead of
        failing (and re-failing) the whole batch; a rule error's (ruleset, code) goes to `errors`."""
        try:
            return self.fire_ticket(view, now)
        except Exception as exc:
            if isinstance(exc, RuleRuntimeError) and errors is not None:
                errors.append((exc.ruleset, exc.code))
            log.exception(
                "firing the timers of ticket %s failed; retrying in %s", view.ticket_id, self.retry_delay
            )
            later = now + self.retry_delay
            return TicketWrite(
                timers=[
                    replace(t, next_fire_at=later)
                    for t in view.timers
                    if t.next_fire_at is not None and t.next_fire_at <= now
                ]
            )

    def _notify(self, topic: str) -> None:
        if self.notifier is not None:
            self.notifier.publish(topic)
