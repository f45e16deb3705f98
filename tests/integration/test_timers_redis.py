"""Cross-replica wake-ups over a real Redis: a notification published by one process's notifier reaches
another's, and wakes a worker whose poll interval alone would be far too slow."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from rulesvc.delivery.notify import ACTIONS, TIMERS, RedisNotifier
from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from rulesvc.sla.clock import VirtualClock
from rulesvc.storage import SqlStore
from scheduler.build import build_worker
from scheduler.config import WorkerConfig
from tests.integration.conftest import REDIS_URL, RULESETS, unavailable
from tests.integration.timer_support import Events, complaint, pg_url, wait_until  # noqa: F401


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def pair(redis_url: str) -> Iterator[tuple[RedisNotifier, RedisNotifier]]:
    one, two = RedisNotifier(redis_url), RedisNotifier(redis_url)
    time.sleep(0.3)  # let both subscriptions settle
    yield one, two
    one.close()
    two.close()


def test_a_notification_reaches_the_other_replica(pair: tuple[RedisNotifier, RedisNotifier]) -> None:
    one, two = pair
    seen = two.version(ACTIONS)
    one.publish(ACTIONS)
    assert two.wait(ACTIONS, seen, timeout=5) > seen
    assert one.wait(ACTIONS, 0, timeout=5) >= 1  # the publisher hears itself through Redis too


def test_a_wake_up_fires_a_due_timer_long_before_the_next_poll(
    pair: tuple[RedisNotifier, RedisNotifier],
    pg_url: str,  # noqa: F811
) -> None:
    publisher, listener = pair
    t0 = datetime(2026, 11, 2, 1, tzinfo=UTC)
    clock = VirtualClock(t0)
    book = RuleBook.load([RULESETS])
    parts = build_worker(
        pg_url,
        book,
        Settings().mask_policy(),
        config=WorkerConfig(poll_interval=3600, delivery_interval=3600),
        clock=clock,
        notifier=listener,
    )
    try:
        Events(parts.engine, book).send(complaint("c1", "C-1", t0), t0)
        parts.worker.start()
        time.sleep(0.3)  # the first poll ran at start; the next one is an hour away
        clock.set(t0 + timedelta(hours=2))
        publisher.publish(TIMERS)
        wait_until(lambda: len(SqlStore(parts.engine).list_actions(0, 10)) == 3, timeout=10)
    finally:
        parts.worker.stop()
