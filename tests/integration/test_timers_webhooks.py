"""Webhook delivery against a real local HTTP receiver that fails, times out and recovers: every action
arrives, signatures verify, retries keep their delivery_id, order per ticket holds, dead letters re-drive."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

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
    receiver,
    timer_url,
    wait_until,
)

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
BOOK = RuleBook.load([RULESETS])
SECRET = "whsec_" + "k" * 32


def expense(n: int, step: int) -> dict[str, Any]:
    return {
        "event_id": f"e{n}-{step}",
        "type": "ticket.created",  # the same ticket reported again: each report is decided anew
        "occurred_at": (T0 + timedelta(minutes=step)).isoformat(),
        "ticket": {
            "kind": "expense",
            "id": f"E-{n}",
            "expense_type": "差旅费",
            "amount": 100 + step,
            "applicant_rank": "总监",
            "applicant": "赵敏",
        },
    }


def make_parts(url: str, retry: RetryPolicy) -> WorkerParts:
    return build_worker(
        url,
        BOOK,
        Settings().mask_policy(),
        config=WorkerConfig(poll_interval=0.05, delivery_interval=0.05, delivery_concurrency=4),
        retry=retry,
        clock=VirtualClock(T0),
    )


@pytest.fixture
def flaky(timer_url: str) -> Iterator[WorkerParts]:  # noqa: F811
    parts = make_parts(
        timer_url, RetryPolicy(max_attempts=30, base_seconds=0.02, cap_seconds=0.2, timeout_seconds=0.3)
    )
    yield parts
    parts.worker.stop()


def feed_cursors(parts: WorkerParts) -> dict[int, str]:
    return {r.cursor: r.ticket_id for r in SqlStore(parts.engine).list_actions(0, 10_000)}


def test_failing_then_stalling_receiver_gets_everything_in_order(
    flaky: WorkerParts,
    receiver: Receiver,  # noqa: F811
) -> None:
    receiver.secret = flaky.webhooks.create_subscription(receiver.url, secret=SECRET).secret
    receiver.script = [500] * 12 + [("sleep", 0.6)] * 3 + [503] * 3
    for n in range(8):
        for step in range(3):
            Events(flaky.engine, BOOK).send(expense(n, step), T0)
    expected = feed_cursors(flaky)
    assert len(expected) == 8 * 3 * 2  # auto_approve + trigger_payment per event
    flaky.worker.start()
    wait_until(lambda: len(receiver.unique_accepted()) == len(expected), timeout=30)

    accepted = receiver.unique_accepted()
    assert {r.json["cursor"] for r in accepted.values()} == set(expected)
    assert all(r.delivery_id == r.json["delivery_id"] for r in accepted.values())
    assert receiver.verify_all()
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for r in receiver.received:
        bodies[r.delivery_id].add(r.body)
    assert all(len(b) == 1 for b in bodies.values())  # a retry re-sends the identical body
    assert len(receiver.received) > len(expected)  # failures and timeouts did happen
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for r in receiver.accepted():
        if r.delivery_id not in seen:
            seen.add(r.delivery_id)
            first_seen[r.json["ticket_id"]].append(r.json["cursor"])
    assert all(cursors == sorted(cursors) for cursors in first_seen.values())
    payments = [r.json for r in accepted.values() if r.json["action"]["type"] == "trigger_payment"]
    assert len(payments) == 24 and len({p["cursor"] for p in payments}) == 24


def test_dead_letters_hold_their_ticket_and_redrive_delivers_in_order(
    timer_url: str,  # noqa: F811
    receiver: Receiver,  # noqa: F811
) -> None:
    parts = make_parts(
        timer_url, RetryPolicy(max_attempts=2, base_seconds=0.01, cap_seconds=0.02, timeout_seconds=1)
    )
    try:
        sub = parts.webhooks.create_subscription(
            receiver.url, secret=SECRET, action_types=["trigger_payment"]
        )
        receiver.secret = sub.secret
        receiver.script = [500, 500]
        Events(parts.engine, BOOK).send(expense(1, 0), T0)
        Events(parts.engine, BOOK).send(expense(1, 1), T0)
        parts.worker.start()
        wait_until(lambda: len(parts.webhooks.dead_letters(sub.id, 0, 10)) == 1)
        [dead] = parts.webhooks.dead_letters(sub.id, 0, 10)
        assert dead.attempts == 2 and dead.last_status == 500
        assert receiver.accepted() == []  # the second payment of E-1 waits behind the dead one
        assert parts.webhooks.redrive(delivery_id=dead.delivery_id) == 1
        wait_until(lambda: len(receiver.unique_accepted()) == 2)
        amounts = [r.json["action"]["amount"] for r in receiver.accepted()]
        assert amounts == [100, 101]
        assert parts.webhooks.dead_letters(sub.id, 0, 10) == []
    finally:
        parts.worker.stop()


def test_subscription_filters_and_new_subscriptions_start_at_the_feed_end(
    timer_url: str,  # noqa: F811
    receiver: Receiver,  # noqa: F811
) -> None:
    parts = make_parts(timer_url, RetryPolicy())
    try:
        Events(parts.engine, BOOK).send(expense(1, 0), T0)  # before the subscription: not delivered
        sub = parts.webhooks.create_subscription(receiver.url, kinds=["loan"], secret=SECRET)
        other = parts.webhooks.create_subscription(
            receiver.url, kinds=["expense"], action_types=["auto_approve"]
        )
        Events(parts.engine, BOOK).send(expense(2, 0), T0)
        assert parts.deliverer.run_once() == 1
        [got] = receiver.accepted()
        assert got.json["subscription_id"] == other.id and got.json["action"]["type"] == "auto_approve"
        assert got.json["ticket_id"] == "E-2" and got.json["kind"] == "expense"
        assert parts.webhooks.deliveries(sub.id, None, 0, 10) == []
        body: dict[str, Any] = orjson.loads(got.body)
        assert body["decision_id"] and body["at"]
    finally:
        parts.worker.stop()


class CountingStore:
    """The real webhook store, counting the calls a delivery round makes."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: dict[str, int] = defaultdict(int)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


def test_rounds_skip_fan_out_and_claims_while_no_subscription_is_active(
    timer_url: str,  # noqa: F811
    receiver: Receiver,  # noqa: F811
) -> None:
    """Under load every decision wakes the deliverer; without a subscription a round costs one cached
    check instead of two locking queries."""
    parts = make_parts(timer_url, RetryPolicy())
    try:
        store = CountingStore(parts.webhooks.store)
        parts.webhooks.store = store  # type: ignore[assignment]
        Events(parts.engine, BOOK).send(expense(1, 0), T0)
        for _ in range(5):
            assert parts.deliverer.run_once() == 0
        assert store.calls["fan_out"] == 0 and store.calls["claim"] == 0
        assert store.calls["has_active_subscriptions"] == 1  # cached between rounds
        parts.webhooks.create_subscription(receiver.url, secret=SECRET, from_start=True)
        actions = len(feed_cursors(parts))
        assert actions >= 1
        assert parts.deliverer.run_once() == actions  # this service's own change is seen at once
        assert store.calls["fan_out"] >= 1 and store.calls["claim"] >= 1
        assert [got.json["ticket_id"] for got in receiver.accepted()] == ["E-1"] * actions
    finally:
        parts.worker.stop()
