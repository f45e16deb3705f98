"""The background worker: APScheduler (3.x, `BackgroundScheduler`) runs the timer poller and the webhook
deliverer as interval jobs; wake-up notifications (`rulesvc.delivery.notify`) run a job at once.

Runs inside `rulesvc serve` (a thread of the server process) and standalone as `rulesvc worker`. Any
number of workers may run against one PostgreSQL database: claims skip rows other workers hold.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from rulesvc.delivery.notify import ACTIONS, TIMERS, Notifier
from scheduler.config import WorkerConfig
from scheduler.delivery import WebhookDeliverer
from scheduler.poller import TimerPoller

log = logging.getLogger("rulesvc.scheduler")

TIMERS_JOB = "timers"
WEBHOOKS_JOB = "webhooks"
HEARTBEAT_JOB = "heartbeat"
ROLLUPS_JOB = "rollups"


class _Job:
    """A job body that never runs twice at once, reruns once if woken while running, and starts at most
    once per `min_gap` seconds when woken: under load every decision wakes the jobs, and back-to-back runs
    would each pay a database round trip for a handful of rows instead of one run for all of them."""

    def __init__(self, name: str, body: Callable[[], object], min_gap: float = 0.0) -> None:
        self.name = name
        self._body = body
        self._min_gap = min_gap
        # One lock for all the flags: "run again or stop" and "is it running" change together, so a
        # wake-up arriving as a run ends is either seen by that run or starts a new one, never dropped.
        self._state = threading.Lock()
        self._running = False
        self._again = False
        self._scheduled = False
        self._last_start = float("-inf")

    def __call__(self) -> None:
        with self._state:
            if self._running:
                self._again = True
                return
            self._running = True
        try:
            while True:
                with self._state:
                    self._scheduled = False
                    self._again = False
                    self._last_start = time.monotonic()
                try:
                    self._body()
                except Exception:
                    log.exception("%s job failed", self.name)
                with self._state:
                    if not self._again:
                        self._running = False
                        return
                time.sleep(max(0.0, self._last_start + self._min_gap - time.monotonic()))
        except BaseException:
            with self._state:
                self._running = False
            raise

    def request_run(self) -> float | None:
        """Ask for a run because of a wake-up: the delay (seconds) after which to schedule it, or None when
        a run already in progress or already scheduled will cover it."""
        with self._state:
            if self._running:
                self._again = True
                return None
            if self._scheduled:
                return None
            self._scheduled = True
            return max(0.0, self._last_start + self._min_gap - time.monotonic())


class Worker:
    def __init__(
        self,
        config: WorkerConfig,
        poller: TimerPoller | None = None,
        deliverer: WebhookDeliverer | None = None,
        notifier: Notifier | None = None,
        on_stop: Callable[[], None] | None = None,
        heartbeat: Callable[[], None] | None = None,
        rollups: Callable[[], object] | None = None,
    ) -> None:
        self.config = config
        self.rollups = rollups
        self.heartbeat = heartbeat
        self.poller = poller
        self.deliverer = deliverer
        self.notifier = notifier
        self._on_stop = on_stop
        self._scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
        self._jobs: dict[str, _Job] = {}
        self._stopped = threading.Event()

    def start(self) -> None:
        if self.poller is not None and self.config.timers:
            self._add(TIMERS_JOB, self.poller.poll, self.config.poll_interval)
        if self.deliverer is not None and self.config.webhooks:
            deliverer = self.deliverer
            self._add(WEBHOOKS_JOB, lambda: deliverer.run_once(wait=False), self.config.delivery_interval)
        if self.heartbeat is not None:
            self._add(HEARTBEAT_JOB, self.heartbeat, self.config.heartbeat_interval)
        if self.rollups is not None:
            self._add(ROLLUPS_JOB, self.rollups, self.config.rollup_interval)
        if self.notifier is not None:
            self.notifier.subscribe(self._on_notification)
        self._scheduler.start()
        log.info("worker started: jobs %s", ", ".join(self._jobs) or "none")

    def _add(self, job_id: str, body: Callable[[], object], interval: float) -> None:
        job = _Job(job_id, body, self.config.min_wake_gap)
        self._jobs[job_id] = job
        self._scheduler.add_job(
            job,
            IntervalTrigger(seconds=interval),
            id=job_id,
            name=job_id,
            max_instances=2,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )

    def _on_notification(self, topic: str) -> None:
        if topic == TIMERS:
            self.wake(TIMERS_JOB)
        elif topic == ACTIONS:
            self.wake(WEBHOOKS_JOB)

    def wake(self, job_id: str) -> None:
        """Run a job now (or right after its current run, or `min_wake_gap` after its last start)."""
        job = self._jobs.get(job_id)
        if job is None or self._stopped.is_set():
            return
        delay = job.request_run()
        if delay is None:
            return
        try:
            self._scheduler.modify_job(job_id, next_run_time=datetime.now(UTC) + timedelta(seconds=delay))
        except Exception:  # the scheduler is shutting down
            log.debug("wake-up of %s ignored", job_id)

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.poller is not None:
            self.poller.stop()
        if self.deliverer is not None:
            self.deliverer.stop()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        if self.heartbeat is not None:
            self.heartbeat()  # the last figures, and the time this worker was last seen
        if self._on_stop is not None:
            self._on_stop()
        log.info("worker stopped")
