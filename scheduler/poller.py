"""The timer poller: claims and fires due timer points until none is left (one APScheduler job)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError

from rulesvc.decisions.replan import CalendarReplanner
from rulesvc.decisions.timer_service import TimerService
from scheduler.metrics import WorkerMetrics

log = logging.getLogger("rulesvc.scheduler.timers")


@dataclass
class PollStats:
    polls: int = 0
    tickets: int = 0
    decisions: int = 0
    actions: int = 0
    late_by: list[float] = field(default_factory=list)
    replanned: int = 0
    refused: int = 0


class TimerPoller:
    """`poll()` drains due points in claims of `batch` tickets; safe to run in several processes at once."""

    def __init__(
        self,
        service: TimerService,
        batch: int = 100,
        keep_late: int = 100_000,
        replanner: CalendarReplanner | None = None,
        metrics: WorkerMetrics | None = None,
        replan_seconds: float = 2.0,
    ) -> None:
        self.service = service
        self.replanner = replanner
        self.batch = batch
        self.replan_seconds = replan_seconds
        self.stats = PollStats()
        self.metrics = metrics or WorkerMetrics()
        self._keep_late = keep_late
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def poll(self) -> int:
        """Fire every point due now; returns the number of decisions made. Database errors are logged and
        left to the next poll (nothing is half-fired: each claim is one transaction)."""
        made = 0
        with self._lock:
            self.stats.polls += 1
            self.metrics.inc("rulesvc_worker_polls")
            while not self._stop.is_set():
                try:
                    result = self.service.fire_due(self.batch)
                except DBAPIError as exc:
                    log.warning("timer poll failed, retrying at the next poll: %s", exc.orig or exc)
                    break
                made += result.decisions
                self.stats.tickets += result.tickets
                self.stats.decisions += result.decisions
                self.stats.actions += result.actions
                self.stats.refused += result.refused
                self.metrics.fired(result.late_by)
                if result.refused:
                    self.metrics.inc("rulesvc_timer_refusals", amount=result.refused)
                for ruleset, code in result.rule_errors:
                    self.metrics.rule_error(ruleset, code)
                if len(self.stats.late_by) < self._keep_late:
                    self.stats.late_by.extend(result.late_by)
                if result.tickets < self.batch:
                    break
            if self.replanner is not None and not self._stop.is_set():
                # timers of a calendar published meanwhile: what its publishing request left (it re-plans
                # only a small budget itself), or a crash left; up to `replan_seconds` per poll, so that due
                # points keep firing during a long re-plan
                try:
                    for replanned in self.replanner.replan_pending(self.replan_seconds):
                        self.stats.replanned += replanned.moved
                        if replanned.moved:
                            self.metrics.inc("rulesvc_timer_replans", amount=replanned.moved)
                except DBAPIError as exc:
                    log.warning("re-planning timers failed, retrying at the next poll: %s", exc.orig or exc)
        return made

    def stop(self) -> None:
        self._stop.set()
