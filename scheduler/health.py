"""The worker's liveness for an orchestrator's probe: `rulesvc worker` with `RULESVC_WORKER_HEALTH_PORT`
answers `GET /healthz` on that port — 200 while its heartbeat job has run within `max_age` seconds, else 503
(the scheduler is stuck or dead: restart the process; `rulesvc worker` itself exits then, see `watch`). The
heartbeat is counted when the job starts, before it writes its status row, so a database outage does not make
the worker look dead (restarting would not help; `/readyz` of the API and the alerts speak of the database).
Nothing else is served on the port."""

from __future__ import annotations

import http.server
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger("rulesvc.scheduler")

HEALTH_PATH = "/healthz"
STALLED_EXIT = 70
"""`rulesvc worker`'s exit status once its heartbeat stalled (EX_SOFTWARE): its supervisor restarts it."""


class Liveness:
    """When the heartbeat job last ran (a monotonic clock), and whether that is recent enough."""

    def __init__(self, max_age: float, now: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._now = now
        self._last = now()  # a worker just started counts as alive until its first beat is due

    def beat(self) -> None:
        self._last = self._now()

    def age(self) -> float:
        return max(0.0, self._now() - self._last)

    def alive(self) -> bool:
        return self.age() <= self.max_age


def watch(liveness: Liveness, stopped: threading.Event, every: float = 1.0) -> bool:
    """Wait until `stopped` is set (False) or the heartbeat is older than its max age (True), looking every
    `every` seconds."""
    while not stopped.wait(every):
        if not liveness.alive():
            return True
    return False


class LivenessServer:
    """`GET /healthz` on `host:port`, served by a daemon thread until `stop`."""

    def __init__(self, liveness: Liveness, port: int, host: str = "0.0.0.0") -> None:
        self.liveness = liveness

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.partition("?")[0] != HEALTH_PATH:
                    self._answer(404, {"status": "not_found"})
                    return
                age = round(liveness.age(), 3)
                if liveness.alive():
                    self._answer(200, {"status": "ok", "heartbeat_age_seconds": age})
                else:
                    self._answer(503, {"status": "stalled", "heartbeat_age_seconds": age})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                content = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no log
                pass

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="worker-health", daemon=True)

    def start(self) -> LivenessServer:
        self._thread.start()
        log.info("worker liveness on port %d (GET %s)", self.port, HEALTH_PATH)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
