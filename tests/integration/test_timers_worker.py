"""The whole timer path in one process with a controllable clock: APScheduler polls with a VirtualClock,
due points fire into the engine, their actions reach the feed and a real local webhook receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from rulesvc.decisions.service import verify_store
from rulesvc.delivery.webhooks import RetryPolicy
from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from rulesvc.sla.clock import VirtualClock
from rulesvc.storage import SqlStore
from scheduler.build import WorkerParts, build_worker
from scheduler.config import WorkerConfig
from tests.integration.conftest import RULESETS
from tests.integration.timer_support import (  # noqa: F401
    Events,
    Receiver,
    complaint,
    receiver,
    timer_url,
    wait_until,
)

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
BOOK = RuleBook.load([RULESETS])
FAST = WorkerConfig(poll_interval=0.05, delivery_interval=0.05)


@pytest.fixture
def parts(timer_url: str) -> Iterator[WorkerParts]:  # noqa: F811
    clock = VirtualClock(T0)
    built = build_worker(
        timer_url,
        BOOK,
        Settings().mask_policy(),
        config=FAST,
        retry=RetryPolicy(base_seconds=0.05, cap_seconds=0.5, timeout_seconds=2.0),
        clock=clock,
    )
    yield built
    built.worker.stop()


def feed(parts: WorkerParts) -> list[dict[str, Any]]:
    return [orjson.loads(r.action_text) for r in SqlStore(parts.engine).list_actions(0, 1000)]


def subscribe(parts: WorkerParts, receiver: Receiver) -> None:  # noqa: F811
    sub = parts.webhooks.create_subscription(
        receiver.url, kinds=["complaint"], action_types=["notify", "escalate"], secret="s" * 32
    )
    receiver.secret = sub.secret


def test_not_accepted_notifies_at_90_minutes_and_escalates_at_2_hours(
    parts: WorkerParts,
    receiver: Receiver,  # noqa: F811
) -> None:
    clock = parts.timers.clock
    assert isinstance(clock, VirtualClock)
    subscribe(parts, receiver)
    Events(parts.engine, BOOK).send(complaint("c1", "C-1", T0), T0)
    parts.worker.start()
    clock.set(T0 + timedelta(minutes=89))
    time.sleep(0.4)
    assert [a["type"] for a in feed(parts)] == ["start_timer"] and receiver.received == []

    clock.set(T0 + timedelta(minutes=90))
    wait_until(lambda: len(receiver.accepted()) == 1)
    notify = receiver.accepted()[0].json
    assert notify["action"]["type"] == "notify" and notify["ticket_id"] == "C-1"
    assert notify["action"]["channels"] == ["sms", "email", "in_app"]
    assert notify["action"]["fired_by"]["point"] == "预警"

    clock.set(T0 + timedelta(hours=2))
    wait_until(lambda: len(receiver.accepted()) == 2)
    escalate = receiver.accepted()[1].json
    assert escalate["action"]["type"] == "escalate" and escalate["action"]["to"] == "supervisor"

    clock.set(T0 + timedelta(hours=6))
    time.sleep(0.4)
    assert [a["type"] for a in feed(parts)] == ["start_timer", "notify", "escalate"]
    assert len(receiver.received) == 2 and receiver.verify_all()
    assert verify_store(SqlStore(parts.engine)).ok


def test_accepted_after_one_hour_delivers_nothing(
    parts: WorkerParts,
    receiver: Receiver,  # noqa: F811
) -> None:
    clock = parts.timers.clock
    assert isinstance(clock, VirtualClock)
    subscribe(parts, receiver)
    Events(parts.engine, BOOK).send(complaint("c1", "C-1", T0), T0)
    parts.worker.start()
    clock.set(T0 + timedelta(hours=1))
    Events(parts.engine, BOOK).send(complaint("c2", "C-1", clock.now(), "ticket.accepted"), clock.now())
    clock.set(T0 + timedelta(hours=6))
    time.sleep(0.5)
    assert [a["type"] for a in feed(parts)] == ["start_timer", "cancel_timer"]
    assert receiver.received == []
    assert parts.poller.stats.decisions == 0 and parts.poller.stats.polls > 3
