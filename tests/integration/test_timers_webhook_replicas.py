"""Webhooks with two replicas (PostgreSQL): each delivery reaches a slow receiver exactly once (the lease of
an attempt is renewed when it starts), every ticket's actions arrive in order, and a slow or timing-out
receiver delays only its own subscription."""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from rulesvc.delivery.webhooks import RetryPolicy
from rulesvc.settings import Settings
from rulesvc.storage import SqlStore
from scheduler.build import WorkerParts, build_worker
from scheduler.config import WorkerConfig
from tests.integration.test_timers_webhooks import BOOK, SECRET, expense
from tests.integration.timer_support import Events, pg_url, wait_until  # noqa: F401

TICKETS = 50  # two actions each (auto_approve, trigger_payment): 100 deliveries per subscription


@dataclass
class SlowReceiver:
    """A real HTTP receiver answering 200 after `delay` seconds; records (delivery_id, ticket, cursor, at)."""

    delay: float
    received: list[tuple[str, str, int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> None:
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                time.sleep(state.delay)
                with state.lock:
                    state.received.append(
                        (body["delivery_id"], body["ticket_id"], body["cursor"], time.monotonic())
                    )
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def ids(self) -> Counter[str]:
        with self.lock:
            return Counter(r[0] for r in self.received)


@pytest.fixture
def receivers() -> Iterator[dict[str, SlowReceiver]]:
    made = {"fast": SlowReceiver(0.0), "slow": SlowReceiver(4.0), "stalled": SlowReceiver(12.0)}
    for receiver in made.values():
        receiver.start()
    yield made
    for receiver in made.values():
        receiver.stop()


def replica(url: str) -> WorkerParts:
    return build_worker(
        url,
        BOOK,
        Settings().mask_policy(),
        config=WorkerConfig(timers=False, delivery_interval=0.05, delivery_concurrency=8),
        retry=RetryPolicy(max_attempts=2, base_seconds=0.05, cap_seconds=0.1, timeout_seconds=10.0),
    )


def test_two_replicas_deliver_each_action_once_in_order_and_a_slow_receiver_delays_only_itself(
    pg_url: str,  # noqa: F811
    receivers: dict[str, SlowReceiver],
) -> None:
    replicas = [replica(pg_url), replica(pg_url)]
    try:
        subscriptions = {
            name: replicas[0].webhooks.create_subscription(r.url, secret=SECRET)
            for name, r in receivers.items()
        }
        for replica_parts in replicas:
            replica_parts.worker.start()
        events = Events(replicas[0].engine, BOOK)
        stored_at: dict[str, float] = {}
        for n in range(TICKETS):
            events.send(expense(n, 0), datetime.now(UTC))
            stored_at[f"E-{n}"] = time.monotonic()
        feed = {r.cursor: r for r in SqlStore(replicas[0].engine).list_actions(0, 10_000)}
        assert len(feed) == 2 * TICKETS

        def delivered(subscription_id: str) -> int:
            return len(replicas[0].webhooks.deliveries(subscription_id, "delivered", 0, 1000))

        wait_until(lambda: len(receivers["fast"].ids()) == 2 * TICKETS, timeout=30)
        wait_until(lambda: len(receivers["slow"].ids()) == 2 * TICKETS, timeout=120)

        # exactly once at the healthy receivers, although the slow one needs longer than a lease per batch
        for name in ("fast", "slow"):
            counts = receivers[name].ids()
            assert set(counts.values()) == {1}, [i for i, c in counts.items() if c > 1]
            # the receiver records a body before it answers: the sender marks it delivered just after
            subscription_id = subscriptions[name].id
            wait_until(lambda: delivered(subscription_id) == 2 * TICKETS, timeout=30)  # noqa: B023
        # per ticket, actions arrive in feed order
        for name in ("fast", "slow"):
            per_ticket: dict[str, list[int]] = {}
            for _, ticket, cursor, _ in sorted(receivers[name].received, key=lambda r: r[3]):
                per_ticket.setdefault(ticket, []).append(cursor)
            assert all(cursors == sorted(cursors) for cursors in per_ticket.values())
        # the fast receiver's lag (arrival − the action's commit) never includes a slow or stalled answer
        lags = {
            name: [at - stored_at[ticket] for _, ticket, _, at in receivers[name].received]
            for name in receivers
        }
        assert max(lags["fast"]) < 3.5 < 4.0 <= min(lags["slow"]), (max(lags["fast"]), min(lags["slow"]))
    finally:
        for replica_parts in replicas:
            replica_parts.worker.stop()
