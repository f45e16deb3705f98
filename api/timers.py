"""Mounting SLA timers' HTTP side on the app: webhook subscriptions and dead letters, the SLA report, and
the notifier that long-polls of the action feed wait on.

Their errors leave through the app's one error table (api/errors.py): an invalid subscription or report
query → 422 (details: the field path), an unknown subscription or dead letter → 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from rulesvc.delivery.notify import ACTIONS, Notifier
from rulesvc.delivery.service import WebhookService
from rulesvc.sla.reports import SlaSource

LONG_POLL_MAX_SECONDS = 30
TICK_SECONDS = 0.05
RECHECK_SECONDS = 1.0
T = TypeVar("T")


@dataclass
class TimerRuntime:
    webhooks: WebhookService
    reports: SlaSource
    notifier: Notifier | None


async def wait_for_actions(
    request: Request, read: Callable[[int, int], list[T]], after: int, limit: int, wait: float
) -> list[T]:
    """Long-poll: re-read the feed when a notification says actions were stored (this process, or any
    replica through Redis), and at least every `RECHECK_SECONDS` (replicas without Redis); stop at the
    first records, after `wait` seconds, or when the client went away. Holds no thread while waiting."""
    notifier = timers_runtime(request).notifier
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    seen = notifier.version(ACTIONS) if notifier is not None else 0
    recheck = loop.time() + RECHECK_SECONDS
    while loop.time() < deadline:
        await asyncio.sleep(min(TICK_SECONDS, max(0.0, deadline - loop.time())))
        version = notifier.version(ACTIONS) if notifier is not None else seen
        if version == seen and loop.time() < recheck:
            continue
        seen, recheck = version, loop.time() + RECHECK_SECONDS
        items = await run_in_threadpool(read, after, limit)
        if items:
            return items
        if await request.is_disconnected():
            break
    return []


def timers_runtime(request: Request) -> TimerRuntime:
    runtime: TimerRuntime = request.app.state.timers
    return runtime


def install_timers(app: FastAPI, runtime: TimerRuntime) -> None:
    """What the webhook and report routes (mounted by the app) and the feed's long-polls read."""
    app.state.timers = runtime
