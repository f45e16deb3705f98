"""A database that stops answering (not refusing: frozen) must not hang the service: events get 503 within
the configured bound, /readyz answers 503 within a second, and the service recovers by itself when the
database answers again. Request ids reach every error body, also a 500's."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from rulesvc.decisions.service import Evaluator
from tests.integration.conftest import PG_HOST, PG_PORT, auth, event, make_settings

BOUND = 2.0


class FreezableProxy:
    """A TCP relay to PostgreSQL that can stop relaying (connections stay open, nothing answers)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.frozen = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self.frozen.is_set() and not self.closed:
                    time.sleep(0.02)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        self.frozen.clear()
        self.listener.close()


@pytest.fixture
def proxied(pg_database: str) -> Iterator[tuple[str, FreezableProxy]]:
    from tests.integration.conftest import reset_pg

    reset_pg(pg_database)
    proxy = FreezableProxy(PG_HOST, PG_PORT)
    name = pg_database.rsplit("/", 1)[1]
    yield f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}", proxy
    proxy.close()


def test_frozen_postgresql_gives_503_within_the_bound_and_recovers(
    proxied: tuple[str, FreezableProxy], book: Evaluator, tmp_path: Path
) -> None:
    url, proxy = proxied
    app = create_app(
        make_settings(url, request_timeout=BOUND, db_pool_timeout=1.0, checkpoint_dir=tmp_path), book=book
    )
    with TestClient(app) as client:
        key = _ingest_key(app)
        assert client.post("/v1/events", json=event("h1"), headers=auth(key)).status_code == 200

        proxy.frozen.set()
        started = time.monotonic()
        frozen = client.post("/v1/events", json=event("h2"), headers=auth(key) | {"X-Request-ID": "hang-1"})
        waited = time.monotonic() - started
        assert frozen.status_code == 503, frozen.text
        assert waited < BOUND + 2.5, waited  # the bound, plus slack for a loaded test machine
        assert frozen.json()["details"]["request_id"] == "hang-1" and frozen.json()["code"] == "unavailable"
        assert frozen.headers["x-request-id"] == "hang-1"

        started = time.monotonic()
        ready = client.get("/readyz")
        # the probe is given 0.5 s (READY_TIMEOUT); the slack is for a loaded test machine
        assert ready.status_code == 503 and time.monotonic() - started < 1.5

        proxy.frozen.clear()
        deadline = time.monotonic() + 30
        while True:  # the stuck work finishes once the database answers; new requests succeed
            answer = client.post("/v1/events", json=event("h3"), headers=auth(key))
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 200, answer.text
        assert client.get("/readyz").status_code == 200


def test_sqlite_writer_held_forever_gives_503_within_the_bound(
    sqlite_url: str, book: Evaluator, tmp_path: Path
) -> None:
    app = create_app(make_settings(sqlite_url, request_timeout=BOUND), book=book)
    with TestClient(app) as client:
        key = _ingest_key(app)
        blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # another process holding SQLite's one writer
            started = time.monotonic()
            answer = client.post("/v1/events", json=event("s1"), headers=auth(key))
            assert answer.status_code == 503 and time.monotonic() - started < BOUND + 2.5
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()


def test_unexpected_error_body_carries_the_request_id(app: FastAPI, client: TestClient) -> None:
    def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", explode)
    response = client.get("/boom", headers={"X-Request-ID": "trace-500"})
    assert response.status_code == 500
    assert response.json()["details"] == {"request_id": "trace-500"}
    assert response.headers["x-request-id"] == "trace-500"
    unauthorized = client.get("/v1/actions", headers={"X-Request-ID": "trace-401"})
    assert unauthorized.headers["x-request-id"] == "trace-401"


def _ingest_key(app: FastAPI) -> str:
    from rulesvc.apikeys import Role
    from rulesvc.decisions.service import create_api_key
    from rulesvc.sla.clock import SystemClock

    return create_api_key(app.state.runtime.service.keys, frozenset({Role.INGEST}), SystemClock())[1]
