"""The worker's liveness probe (RULESVC_WORKER_HEALTH_PORT): `rulesvc worker` answers GET /healthz while
its scheduler runs the heartbeat, and 503 once the heartbeat stops; on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from scheduler.build import build_worker
from scheduler.config import WorkerConfig
from scheduler.health import STALLED_EXIT, Liveness, LivenessServer
from tests.integration.conftest import REPO, RULESETS, cli_env, free_port, rulesvc_command
from tests.integration.timer_support import wait_until
from tests.unit.scheduler.test_health import get


def test_the_probe_follows_the_heartbeat(database_url: str) -> None:
    now = [0.0]
    liveness = Liveness(60, now=lambda: now[0])
    parts = build_worker(
        database_url,
        RuleBook.load([RULESETS]),
        Settings().mask_policy(),
        config=WorkerConfig(heartbeat_interval=0.05),
        liveness=liveness,
    )
    server = LivenessServer(parts.liveness, 0, host="127.0.0.1").start()
    try:
        parts.worker.start()
        assert get(server.port)[0] == 200
        now[0] = 100.0  # a long while later: the scheduler's next beat shows it still runs
        wait_until(lambda: get(server.port) == (200, {"status": "ok", "heartbeat_age_seconds": 0.0}))
        parts.worker.stop()  # the scheduler stops beating (a hung or dead scheduler alike)
        now[0] = 200.0
        assert get(server.port) == (503, {"status": "stalled", "heartbeat_age_seconds": 100.0})
    finally:
        server.stop()
        parts.worker.stop()


def test_the_worker_command_serves_the_probe(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(sqlite_url, RULESVC_WORKER_HEALTH_PORT=str(port))
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        worker = subprocess.Popen(
            [*rulesvc_command(), "worker"], env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT
        )
    try:

        def answered() -> bool:
            try:
                return get(port)[0] == 200
            except OSError:  # not listening yet
                assert worker.poll() is None, log.read_text(errors="replace")
                return False

        wait_until(answered, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log.read_text(errors="replace")
    assert f"worker liveness on port {port}" in log.read_text(errors="replace")


def test_a_stalled_worker_exits_for_its_supervisor_to_restart_it(sqlite_url: str, tmp_path: Path) -> None:
    """Compose restarts a process that exits (`restart: unless-stopped`), never one merely unhealthy: once its
    heartbeat is older than RULESVC_WORKER_STALL_SECONDS the worker exits with STALLED_EXIT by itself. Here
    the limit (1 s) is under the heartbeat interval (5 s), so the first gap between two beats is a stall."""
    port = free_port()
    env = cli_env(sqlite_url, RULESVC_WORKER_HEALTH_PORT=str(port), RULESVC_WORKER_STALL_SECONDS="1")
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        worker = subprocess.Popen(
            [*rulesvc_command(), "worker"], env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        status = worker.wait(60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = log.read_text(errors="replace")
    assert status == STALLED_EXIT, text
    assert "has not run its heartbeat" in text and f"exiting with status {STALLED_EXIT}" in text
