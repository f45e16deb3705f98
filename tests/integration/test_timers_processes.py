"""Real processes on PostgreSQL: a worker killed with SIGKILL mid-timer is restarted and fires the overdue
points once, marked late; three replicas fire 1,000 timers due within a few seconds exactly once."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from rulesvc.rulebook import RuleBook
from rulesvc.service import verify_store
from rulesvc.settings import Settings
from rulesvc.sla.calendar import always_open
from rulesvc.sla.clock import SystemClock
from rulesvc.sla.ticket_timers import schedule
from rulesvc.sla.timers import start
from rulesvc.storage import SqlStore, make_engine
from rulesvc.storage.timer_store import SqlTimerStore
from rulesvc.timer_service import TimerService
from tests.integration.conftest import REPO, cli_env
from tests.integration.timer_support import FAST_RULES, complaint, decide, pg_url, wait_until  # noqa: F401

FAST_BOOK = RuleBook.load([FAST_RULES])


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._handle = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scheduler"],
            env=env,
            cwd=REPO,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_started(self) -> None:
        wait_until(lambda: "worker started" in self.text() or self.process.poll() is not None, timeout=60)
        assert self.process.poll() is None, self.text()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._handle.close()
        return self.text()


def worker_env(url: str) -> dict[str, str]:
    return cli_env(
        url, RULESVC_RULESETS=str(FAST_RULES), RULESVC_TIMER_POLL_INTERVAL="0.2", RULESVC_LOG_LEVEL="INFO"
    )


def feed(url: str) -> list[tuple[str, dict[str, Any]]]:
    engine = make_engine(url)
    try:
        return [(r.ticket_id, orjson.loads(r.action_text)) for r in SqlStore(engine).list_actions(0, 100_000)]
    finally:
        engine.dispose()


def test_killed_worker_restarts_and_fires_overdue_points_once_marked_late(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = worker_env(pg_url)
    first = WorkerProcess(env, tmp_path / "first.log")
    engine = make_engine(pg_url)
    try:
        first.wait_started()
        service = TimerService(SqlTimerStore(engine), FAST_BOOK, SystemClock(), Settings().mask_policy())
        created = datetime.now(UTC)
        decide(service, complaint("c1", "C-1", created), created)  # 预警 at +3 s, due at +4 s
        time.sleep(1.0)
        first.kill()
        time.sleep(max(0.0, (created + timedelta(seconds=5) - datetime.now(UTC)).total_seconds()))
        assert [a["type"] for _, a in feed(pg_url)] == ["start_timer"]

        second = WorkerProcess(env, tmp_path / "second.log")
        try:
            wait_until(lambda: len(feed(pg_url)) == 3, timeout=60)
            time.sleep(1.0)
        finally:
            log = second.stop()
        actions = [a for _, a in feed(pg_url)]
        assert [a["type"] for a in actions] == ["start_timer", "notify", "escalate"], log
        notify, escalate = actions[1:]
        assert notify["fired_by"]["late_by"] >= 2.0 and escalate["fired_by"]["late_by"] >= 1.0
        assert verify_store(SqlStore(engine)).ok
    finally:
        first.stop()
        engine.dispose()


def test_three_replicas_fire_1000_timers_exactly_once(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    env = worker_env(pg_url)
    workers = [WorkerProcess(env, tmp_path / f"worker{i}.log") for i in range(3)]
    engine = make_engine(pg_url)
    try:
        for worker in workers:
            worker.wait_started()
        calendar = always_open()
        now = datetime.now(UTC)
        timers = []
        for i in range(1000):
            due = now + timedelta(seconds=2) + timedelta(milliseconds=3 * i)  # due within 3 s
            state = start(
                f"C-{i}",
                "首次响应",
                "24x7",
                due - timedelta(seconds=4),
                timedelta(seconds=4),
                (("预警", timedelta(seconds=3)),),
                "complaint-sla-fast/启动首次响应计时",
            )
            timers.append(schedule(state, 1, calendar))
        tickets = [
            (f"C-{i}", "complaint", {"kind": "complaint", "id": f"C-{i}", "owner": "王五"})
            for i in range(1000)
        ]
        SqlTimerStore(engine).import_timers(tickets, timers, now)
        wait_until(lambda: len(feed(pg_url)) >= 2000, timeout=90, interval=0.5)
        time.sleep(1.5)
    finally:
        logs = [worker.stop() for worker in workers]
    try:
        fired = Counter((ticket, action["type"]) for ticket, action in feed(pg_url))
        assert sum(n for (_, kind), n in fired.items() if kind == "notify") == 1000
        assert sum(n for (_, kind), n in fired.items() if kind == "escalate") == 1000
        assert max(fired.values()) == 1
        per_worker = [
            int(m.group(1)) for log in logs for m in re.finditer(r"fired (\d+) timer decisions", log)
        ]
        assert len(per_worker) == 3 and sum(per_worker) == 2000, logs
        assert sum(1 for n in per_worker if n > 0) >= 2, per_worker  # the replicas shared the work
        assert verify_store(SqlStore(engine)).ok
    finally:
        engine.dispose()
