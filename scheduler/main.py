"""`rulesvc worker` (and `python -m scheduler`): the timer poller and webhook deliverer without the HTTP
service, for deployments that split roles. Settings come from the environment (`RULESVC_*`)."""

from __future__ import annotations

import logging
import os
import socket

from rulesvc.notify import shared_notifier
from rulesvc.settings import Settings
from scheduler.build import build_worker, load_rulebook
from scheduler.config import WorkerConfig

log = logging.getLogger("rulesvc.scheduler")


def worker_config(settings: Settings) -> WorkerConfig:
    defaults = WorkerConfig()
    return WorkerConfig(
        poll_interval=float(getattr(settings, "timer_poll_interval", defaults.poll_interval)),
        timer_batch=int(getattr(settings, "timer_batch", defaults.timer_batch)),
        delivery_interval=float(getattr(settings, "webhook_interval", defaults.delivery_interval)),
    )


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; logs what it fired and delivered when it stops."""
    book = load_rulebook([settings.rulesets])
    notifier = shared_notifier(settings.redis_url)
    parts = build_worker(
        settings.database_url,
        book,
        settings.mask_policy(),
        config=worker_config(settings),
        notifier=notifier,
    )
    log.info(
        "worker %s:%d running on %s", socket.gethostname(), os.getpid(), parts.engine.url.render_as_string()
    )
    parts.worker.run_forever()
    stats, deliveries = parts.poller.stats, parts.deliverer.stats
    log.info(
        "worker stopped: fired %d timer decisions (%d actions) for %d tickets; %d webhook attempts, %d delivered",
        stats.decisions,
        stats.actions,
        stats.tickets,
        deliveries.attempts,
        deliveries.delivered,
        extra={"timer_decisions": stats.decisions, "webhook_delivered": deliveries.delivered},
    )
    notifier.close()


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_worker(settings)
