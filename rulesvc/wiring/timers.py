"""What a worker runs, wired on its own engine: firing due timer points, re-planning timers when a calendar
version is published, and webhook delivery. `scheduler/` drives these on a schedule."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from rulesvc.datakeys import Keyring
from rulesvc.decisions.replan import CalendarReplanner, PlanningBook
from rulesvc.decisions.timer_service import TimerEvaluator, TimerService
from rulesvc.delivery.notify import Notifier
from rulesvc.delivery.service import WebhookService
from rulesvc.delivery.webhooks import RetryPolicy
from rulesvc.fieldclasses import ClassMasking
from rulesvc.masking import MaskPolicy
from rulesvc.settings import Settings
from rulesvc.sla.clock import Clock, SystemClock
from rulesvc.storage.evidence_reads import SqlEvidenceReader
from rulesvc.storage.timer_store import SqlTimerStore
from rulesvc.storage.webhook_store import SqlWebhookStore
from rulesvc.tracing import NO_TRACING, Tracer
from rulesvc.wiring.database import open_database
from rulesvc.wiring.lifecycle import Lifecycle, build_lifecycle

SQLITE_TIMER_BATCH = 20
"""SQLite has one writer: a poll holds it while it evaluates, so it takes fewer tickets at a time."""


class WorkerBook(TimerEvaluator, PlanningBook, Protocol):
    """What a worker decides on: timer points (each on the versions in force at its time) and re-plans."""


@dataclass
class TimerParts:
    engine: Engine
    timers: TimerService
    webhooks: WebhookService
    replanner: CalendarReplanner
    batch: int
    """Tickets a poll or a re-plan claim takes at a time on this database."""


def build_timer_parts(
    database_url: str,
    book: WorkerBook,
    masking: MaskPolicy,
    *,
    batch: int,
    replan_batch: int = 500,
    replan_lanes: int = 1,
    shares_interpreter: bool = False,
    retry: RetryPolicy | None = None,
    clock: Clock | None = None,
    delivery_clock: Clock | None = None,
    notifier: Notifier | None = None,
    engine_lock: threading.Lock | None = None,
    pool_size: int = 5,
    keyring: Keyring | None = None,
    tracer: Tracer = NO_TRACING,
) -> TimerParts:
    """The worker's use cases on their own engine (migrated). `clock` drives timers (a VirtualClock in
    tests); `delivery_clock` drives retry backoff (real time by default)."""
    engine = open_database(
        database_url,
        keyring=keyring,
        **({"pool_size": pool_size} if not database_url.startswith("sqlite") else {}),
    )
    clock = clock or SystemClock()
    timers = TimerService(
        SqlTimerStore(engine), book, clock, masking, notifier, engine_lock=engine_lock, tracer=tracer
    )
    webhooks = WebhookService(
        SqlWebhookStore(engine),
        delivery_clock or SystemClock(),
        retry,
        evidence=SqlEvidenceReader(engine),
        masking=masking,
        classes=ClassMasking(masking),
        kinds=lambda: getattr(book, "kinds", {}),
    )
    if engine.dialect.name == "sqlite":
        batch = min(batch, SQLITE_TIMER_BATCH)
        replan_batch = min(replan_batch, SQLITE_TIMER_BATCH)
    if engine.dialect.name == "sqlite" or shares_interpreter:
        replan_lanes = 1  # one writer at a time; inside `serve` the requests share the interpreter
    replanner = CalendarReplanner(
        SqlTimerStore(engine),
        book,
        clock,
        masking,
        notifier,
        batch=replan_batch,
        lanes=replan_lanes,
        yields=shares_interpreter,
    )
    return TimerParts(engine, timers, webhooks, replanner, batch)


def open_lifecycle(
    settings: Settings, clock: Clock, masking: MaskPolicy, engine_lock: threading.Lock
) -> tuple[Lifecycle, Engine]:
    """The ruleset and calendar lifecycle on an engine of its own (a worker decides on its live book)."""
    engine = open_database(settings.database_url, keyring=settings.keyring(), pool_size=2)
    lifecycle = build_lifecycle(
        engine,
        settings.rulesets,
        clock,
        masking,
        redis_url=settings.redis_url,
        engine_lock=engine_lock,
        poll_seconds=settings.ruleset_poll_seconds,
    )
    return lifecycle, engine
