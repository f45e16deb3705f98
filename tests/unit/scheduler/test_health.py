"""The worker's liveness: alive while the heartbeat is recent, and the port that says so."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import Any

import orjson

from scheduler.health import HEALTH_PATH, Liveness, LivenessServer, watch


def get(port: int, path: str = HEALTH_PATH) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def test_alive_while_the_heartbeat_is_recent() -> None:
    now = [100.0]
    liveness = Liveness(60, now=lambda: now[0])
    assert liveness.alive() and liveness.age() == 0  # just started
    now[0] = 160.0
    assert liveness.alive() and liveness.age() == 60
    now[0] = 160.5
    assert not liveness.alive()
    liveness.beat()
    assert liveness.alive() and liveness.age() == 0


def test_the_port_answers_200_then_503_and_nothing_else() -> None:
    now = [0.0]
    server = LivenessServer(Liveness(30, now=lambda: now[0]), 0, host="127.0.0.1").start()
    try:
        assert get(server.port) == (200, {"status": "ok", "heartbeat_age_seconds": 0.0})
        now[0] = 45.25
        assert get(server.port) == (503, {"status": "stalled", "heartbeat_age_seconds": 45.25})
        assert get(server.port, "/metrics")[0] == 404
    finally:
        server.stop()


def test_watch_returns_when_stopped_or_once_the_heartbeat_stalls() -> None:
    now = [0.0]
    liveness = Liveness(60, now=lambda: now[0])
    stopped = threading.Event()
    looked: list[float] = []

    class Ticking(threading.Event):
        """Each look moves the clock 25 s on; the heartbeat never comes."""

        def wait(self, timeout: float | None = None) -> bool:
            looked.append(now[0])
            now[0] += 25
            return False

    assert watch(liveness, Ticking(), every=0) is True
    assert looked == [0.0, 25.0, 50.0] and liveness.age() == 75  # 50 s: alive; 75 s: stalled
    stopped.set()
    assert watch(Liveness(60, now=lambda: now[0]), stopped, every=0) is False
