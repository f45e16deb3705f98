"""Assembling a worker from its parts (the composition root of `rulesvc worker` and of `serve`'s worker)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from rulesvc.decisions.replan import CalendarReplanner
from rulesvc.decisions.timer_service import TimerEvaluator, TimerService
from rulesvc.delivery.notify import Notifier
from rulesvc.delivery.service import WebhookService
from rulesvc.delivery.webhooks import RetryPolicy
from rulesvc.masking import MaskPolicy
from rulesvc.sla.clock import Clock, SystemClock
from rulesvc.storage import make_engine, migrate
from rulesvc.storage.evidence_reads import SqlEvidenceReader
from rulesvc.storage.timer_store import SqlTimerStore
from rulesvc.storage.webhook_store import SqlWebhookStore
from scheduler.config import WorkerConfig
from scheduler.delivery import Sender, WebhookDeliverer
from scheduler.poller import TimerPoller
from scheduler.runner import Worker

SQLITE_TIMER_BATCH = 20


@dataclass
class WorkerParts:
    engine: Engine
    timers: TimerService
    webhooks: WebhookService
    poller: TimerPoller
    deliverer: WebhookDeliverer
    worker: Worker


def build_worker(
    database_url: str,
    book: TimerEvaluator,
    masking: MaskPolicy,
    *,
    config: WorkerConfig | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock | None = None,
    delivery_clock: Clock | None = None,
    notifier: Notifier | None = None,
    sender: Sender | None = None,
    engine_lock: threading.Lock | None = None,
    pool_size: int = 5,
) -> WorkerParts:
    """A worker on its own engine (migrated). `clock` drives timers (inject a VirtualClock in tests);
    `delivery_clock` drives retry backoff (real time by default)."""
    config = config or WorkerConfig()
    engine = make_engine(
        database_url, **({"pool_size": pool_size} if not database_url.startswith("sqlite") else {})
    )
    migrate(engine)
    timers = TimerService(
        SqlTimerStore(engine), book, clock or SystemClock(), masking, notifier, engine_lock=engine_lock
    )
    webhooks = WebhookService(
        SqlWebhookStore(engine),
        delivery_clock or SystemClock(),
        retry,
        evidence=SqlEvidenceReader(engine),
        masking=masking,
    )
    # SQLite has one writer: a poll holds it while it evaluates, so it takes fewer tickets at a time.
    batch = (
        min(config.timer_batch, SQLITE_TIMER_BATCH) if engine.dialect.name == "sqlite" else config.timer_batch
    )
    replanner = CalendarReplanner(
        SqlTimerStore(engine), book, clock or SystemClock(), masking, notifier, batch=batch
    )
    poller = TimerPoller(timers, batch, replanner=replanner)
    deliverer = WebhookDeliverer(
        webhooks, sender, config.delivery_batch, config.delivery_concurrency, config.fanout_batch
    )
    worker = Worker(config, poller, deliverer, notifier, on_stop=engine.dispose)
    return WorkerParts(engine, timers, webhooks, poller, deliverer, worker)
