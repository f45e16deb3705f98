"""Assembling a worker from its parts (the composition root of `rulesvc worker` and of `serve`'s worker):
the use cases come from `rulesvc.wiring.timers`, the schedule and the HTTP sender from here."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from rulesvc.datakeys import Keyring
from rulesvc.decisions.timer_service import TimerService
from rulesvc.delivery.notify import Notifier
from rulesvc.delivery.service import WebhookService
from rulesvc.delivery.webhooks import RetryPolicy
from rulesvc.masking import MaskPolicy
from rulesvc.settings import ChannelConfig
from rulesvc.sla.clock import Clock, SystemClock
from rulesvc.tracing import NO_TRACING, Tracer
from rulesvc.wiring.ops import instrument_pool, ops_status, report_rollups
from rulesvc.wiring.timers import WorkerBook, build_timer_parts
from scheduler.channels import ChannelSender
from scheduler.config import WorkerConfig
from scheduler.delivery import HttpSender, Sender, WebhookDeliverer
from scheduler.health import Liveness
from scheduler.metrics import Heartbeat, WorkerMetrics
from scheduler.poller import TimerPoller
from scheduler.runner import Worker


@dataclass
class WorkerParts:
    engine: Engine
    timers: TimerService
    webhooks: WebhookService
    poller: TimerPoller
    deliverer: WebhookDeliverer
    worker: Worker
    metrics: WorkerMetrics
    heartbeat: Heartbeat
    liveness: Liveness


def build_worker(
    database_url: str,
    book: WorkerBook,
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
    keyring: Keyring | None = None,
    metrics: WorkerMetrics | None = None,
    tracer: Tracer = NO_TRACING,
    channels: Mapping[str, ChannelConfig] | None = None,
    liveness: Liveness | None = None,
    in_serve: bool = False,
    rollups: bool = True,
) -> WorkerParts:
    """A worker on its own engine (migrated). `clock` drives timers (inject a VirtualClock in tests);
    `delivery_clock` drives retry backoff (real time by default). With `channels` (the settings'
    notification channels, maybe none), each becomes a subscription of its own and is sent through its
    robot or SMTP server; channels no longer configured are deactivated. `liveness` counts the heartbeats
    (default: one of `config.liveness_max_age`). With `rollups` (on PostgreSQL), the reports' closed days
    are rolled up every `config.rollup_interval`."""
    config = config or WorkerConfig()
    parts = build_timer_parts(
        database_url,
        book,
        masking,
        batch=config.timer_batch,
        replan_batch=config.replan_batch,
        replan_lanes=config.replan_lanes,
        shares_interpreter=in_serve,
        retry=retry,
        clock=clock,
        delivery_clock=delivery_clock,
        notifier=notifier,
        engine_lock=engine_lock,
        pool_size=pool_size,
        keyring=keyring,
        tracer=tracer,
    )
    metrics = metrics or WorkerMetrics()
    instrument_pool(parts.engine, "worker", metrics)
    heartbeat = Heartbeat(ops_status(parts.engine), metrics, SystemClock())
    poller = TimerPoller(
        parts.timers,
        parts.batch,
        replanner=parts.replanner,
        metrics=metrics,
        replan_seconds=config.replan_seconds,
    )
    if channels is not None:
        parts.webhooks.sync_channels(channels)
        sender = ChannelSender(
            sender or HttpSender(parts.webhooks.policy.timeout_seconds), channels, SystemClock()
        )
    deliverer = WebhookDeliverer(
        parts.webhooks,
        sender,
        config.delivery_batch,
        config.delivery_concurrency,
        config.fanout_batch,
        metrics=metrics,
        tracer=tracer,
    )
    liveness = liveness or Liveness(config.liveness_max_age)

    def beat() -> None:
        liveness.beat()  # first: a beat the database holds up still shows the scheduler running
        heartbeat.beat()

    worker = Worker(
        config,
        poller,
        deliverer,
        notifier,
        on_stop=parts.engine.dispose,
        heartbeat=beat,
        rollups=report_rollups(parts.engine) if rollups else None,
    )
    return WorkerParts(
        parts.engine, parts.timers, parts.webhooks, poller, deliverer, worker, metrics, heartbeat, liveness
    )
