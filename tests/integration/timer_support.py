"""Helpers of the timer and webhook tests: table reset, a real local webhook receiver, event bodies."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from rulesvc.decisions.service import DecisionService, EventOutcome
from rulesvc.delivery.webhooks import verify_signature
from rulesvc.settings import Settings
from rulesvc.storage import SqlStore, make_engine

TIMER_TABLES = ("webhook_deliveries", "webhook_subscriptions", "sla_results", "timers", "tickets")
FAST_RULES = Path(__file__).with_name("timer_rules")


def reset_timer_tables(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TIMER_TABLES)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture
def timer_url(database_url: str) -> str:
    """`database_url` (SQLite file and PostgreSQL) with the scheduler's tables emptied too."""
    reset_timer_tables(database_url)
    return database_url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """PostgreSQL only, every table emptied."""
    from tests.integration.conftest import reset_pg

    reset_pg(pg_database)
    reset_timer_tables(pg_database)
    return pg_database


def complaint(
    event_id: str, ticket_id: str, occurred_at: datetime, etype: str = "ticket.created"
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": etype,
        "occurred_at": occurred_at.isoformat(),
        "ticket": {"kind": "complaint", "id": ticket_id, "owner": "王五", "channel": "电话"},
    }


class SettableClock:
    """A clock tests move anywhere (events may be decided in any order of `occurred_at`)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class Events:
    """What `POST /v1/events` does, without HTTP: evaluate, then store the decision with its timer
    changes through the decision store (the production path, without group commit)."""

    def __init__(self, engine: Engine, book: Any) -> None:
        self.clock = SettableClock(datetime.now(UTC))
        store = SqlStore(engine, group_commit=False)
        self.service = DecisionService(store, store, book, self.clock, Settings().mask_policy())

    def send(self, body: dict[str, Any], decided_at: datetime) -> EventOutcome:
        self.clock.at = decided_at
        return self.service.handle_event(body)


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class Received:
    delivery_id: str
    timestamp: str
    signature: str
    body: bytes
    status: int
    request_id: str = ""
    traceparent: str = ""

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1. `script` is consumed one entry per request: an int status to
    answer, or ("sleep", seconds) to stall (a timeout for the sender) before answering 200; when it is
    empty every request gets 200."""

    secret: str = ""
    script: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.status == 200]

    def unique_accepted(self) -> dict[str, Received]:
        return {r.delivery_id: r for r in self.accepted()}

    def verify_all(self) -> bool:
        now = int(time.time())
        with self.lock:
            return all(
                verify_signature(self.secret, r.timestamp, r.body, r.signature, now) for r in self.received
            )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                step = state.script.pop(0) if state.script else 200
            status = 200
            if isinstance(step, tuple):
                time.sleep(step[1])
            else:
                status = int(step)
            with state.lock:
                state.received.append(
                    Received(
                        self.headers.get("X-Rulesvc-Delivery", ""),
                        self.headers.get("X-Rulesvc-Timestamp", ""),
                        self.headers.get("X-Rulesvc-Signature", ""),
                        body,
                        status,
                        self.headers.get("X-Request-ID", ""),
                        self.headers.get("traceparent", ""),
                    )
                )
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
