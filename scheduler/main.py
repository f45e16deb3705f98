"""Running the worker from settings: in the background of `rulesvc serve`, or in the foreground as
`rulesvc worker` (and `python -m scheduler`) for deployments that split roles.

The worker decides timer points on the ruleset versions kept in the database (the same lifecycle registry
the HTTP app uses, reloaded when a version is published), as of each point's time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from rulesvc.delivery.notify import shared_notifier
from rulesvc.delivery.webhooks import RetryPolicy
from rulesvc.settings import Settings
from rulesvc.sla.clock import Clock, SystemClock
from rulesvc.wiring.lifecycle import Lifecycle
from rulesvc.wiring.timers import open_lifecycle
from rulesvc.wiring.tracing import build_tracer
from scheduler.build import WorkerParts, build_worker
from scheduler.config import WorkerConfig
from scheduler.health import STALLED_EXIT, LivenessServer, watch
from scheduler.metrics import WorkerMetrics

log = logging.getLogger("rulesvc.scheduler")


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        poll_interval=settings.timer_poll_interval,
        timer_batch=settings.timer_batch,
        replan_batch=settings.replan_batch,
        replan_lanes=settings.replan_lanes,
        delivery_interval=settings.timer_poll_interval,
        liveness_max_age=settings.worker_stall_seconds,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.webhook_max_attempts,
        base_seconds=settings.webhook_backoff_base,
        cap_seconds=settings.webhook_backoff_max,
        timeout_seconds=settings.webhook_timeout,
    )


@dataclass
class RunningWorker:
    parts: WorkerParts
    lifecycle: Lifecycle
    lifecycle_engine: Engine

    def stop(self) -> None:
        """Stop polling and delivering (a poll in progress finishes), then log what was done."""
        self.parts.worker.stop()
        self.lifecycle.close()
        self.lifecycle_engine.dispose()
        stats, deliveries = self.parts.poller.stats, self.parts.deliverer.stats
        log.info(
            "worker stopped: fired %d timer decisions (%d actions) for %d tickets; %d webhook attempts, "
            "%d delivered, %d dead letters; %d tickets refused (state not matching the audit chain)",
            stats.decisions,
            stats.actions,
            stats.tickets,
            deliveries.attempts,
            deliveries.delivered,
            deliveries.dead,
            stats.refused,
            extra={"timer_decisions": stats.decisions, "webhooks_delivered": deliveries.delivered},
        )


def start_worker(settings: Settings, clock: Clock | None = None, *, in_serve: bool = False) -> RunningWorker:
    """Build the worker from settings and start its jobs (background threads); `in_serve`: in the API's
    process (`rulesvc serve`), whose requests share the interpreter with it."""
    clock = clock or SystemClock()
    masking = settings.mask_policy()
    engine_lock = threading.Lock()
    lifecycle, lifecycle_engine = open_lifecycle(settings, clock, masking, engine_lock)
    metrics = WorkerMetrics()
    lifecycle.registry.listen(metrics.reloaded)
    parts = build_worker(
        settings.database_url,
        lifecycle.book,
        masking,
        config=worker_config(settings),
        retry=retry_policy(settings),
        clock=clock,
        notifier=shared_notifier(settings.redis_url),
        engine_lock=engine_lock,
        keyring=settings.keyring(),
        metrics=metrics,
        tracer=build_tracer(settings),
        channels=settings.channels(),
        in_serve=in_serve,
        rollups=settings.report_rollups,
    )
    parts.worker.start()
    log.info(
        "worker started on %s:%d (%s)",
        socket.gethostname(),
        os.getpid(),
        parts.engine.url.render_as_string(hide_password=True),
    )
    return RunningWorker(parts, lifecycle, lifecycle_engine)


def run_worker(settings: Settings) -> None:
    """`rulesvc worker`: run until SIGTERM or SIGINT; with `worker_health_port`, answer liveness probes
    (`scheduler.health`) meanwhile. A worker whose scheduler stops beating for `worker_stall_seconds` exits
    with `STALLED_EXIT` at once (its stuck threads would hold up a clean stop), so that whatever supervises
    it starts it again: compose's `restart: unless-stopped` (compose restarts a process that exits, never
    one that is merely unhealthy), systemd's `Restart=on-failure`, Kubernetes alike."""
    import signal

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: done.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: done.set())
    running = start_worker(settings)
    liveness = running.parts.liveness
    health = None
    if settings.worker_health_port is not None:
        health = LivenessServer(liveness, settings.worker_health_port).start()
    if watch(liveness, done):
        log.error(
            "the worker's scheduler has not run its heartbeat for %.0f s (stuck): exiting with status %d "
            "for its supervisor to start it again",
            liveness.age(),
            STALLED_EXIT,
        )
        logging.shutdown()
        os._exit(STALLED_EXIT)
    if health is not None:
        health.stop()
    running.stop()


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_worker(settings)
