"""Real processes on PostgreSQL: `rulesvc serve` killed with SIGKILL mid-timer is restarted and fires the
overdue points once, marked late; three `rulesvc serve` replicas fire 1,000 timers falling due within 3
seconds exactly once (each replica logs how many it fired); `rulesvc worker` runs the worker alone."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from rulesvc.apikeys import Role
from rulesvc.decisions.service import create_api_key, verify_store
from rulesvc.sla.calendar import always_open
from rulesvc.sla.clock import SystemClock
from rulesvc.sla.ticket_timers import schedule
from rulesvc.sla.timers import start
from rulesvc.storage import SqlStore, make_engine
from rulesvc.storage.timer_store import SqlTimerStore
from tests.integration.conftest import REPO, Server, cli_env, rulesvc_command, start_server, stop_server
from tests.integration.timer_support import FAST_RULES, complaint, pg_url, wait_until  # noqa: F401


def env_for(url: str) -> dict[str, str]:
    return cli_env(url, RULESVC_RULESETS=str(FAST_RULES), RULESVC_TIMER_POLL_INTERVAL="0.2")


def ingest_key(url: str) -> str:
    engine = make_engine(url)
    try:
        return create_api_key(SqlStore(engine, group_commit=False), frozenset({Role.INGEST}), SystemClock())[
            1
        ]
    finally:
        engine.dispose()


def feed(url: str) -> list[tuple[str, dict[str, Any]]]:
    engine = make_engine(url)
    try:
        records = SqlStore(engine, group_commit=False).list_actions(0, 100_000)
        return [(r.ticket_id, orjson.loads(r.action_text)) for r in records]
    finally:
        engine.dispose()


def chain_ok(url: str) -> bool:
    engine = make_engine(url)
    try:
        return verify_store(SqlStore(engine, group_commit=False)).ok
    finally:
        engine.dispose()


def post(server: Server, key: str, body: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/events", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert response.status_code == 200, response.text


def stopped_log(server: Server) -> str:
    stop_server(server)
    return server.log.read_text(errors="replace")


def test_killed_server_restarts_and_fires_overdue_points_once_marked_late(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = env_for(pg_url)
    first = start_server(env, tmp_path / "first.log")
    key = ingest_key(pg_url)
    created = datetime.now(UTC)
    post(first, key, complaint("c1", "C-1", created))  # 预警 at +3 s, due at +4 s
    time.sleep(1.0)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    time.sleep(max(0.0, 5.0 - (datetime.now(UTC) - created).total_seconds()))
    assert [a["type"] for _, a in feed(pg_url)] == ["start_timer"]

    second = start_server(env, tmp_path / "second.log")
    try:
        wait_until(lambda: len(feed(pg_url)) >= 3, timeout=30)
        time.sleep(1.0)
    finally:
        log = stopped_log(second)
    actions = [a for _, a in feed(pg_url)]
    assert [a["type"] for a in actions] == ["start_timer", "notify", "escalate"], log
    notify, escalate = actions[1:]
    assert notify["fired_by"]["late_by"] >= 2.0 and escalate["fired_by"]["late_by"] >= 1.0
    assert chain_ok(pg_url)


def test_three_replicas_fire_1000_timers_exactly_once(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    env = env_for(pg_url)
    with ThreadPoolExecutor(3) as pool:
        servers = list(pool.map(lambda n: start_server(env, tmp_path / f"replica{n}.log"), range(3)))
    logs: list[str] = []
    try:
        import_due_timers(
            pg_url, 1000, first_due=datetime.now(UTC) + timedelta(seconds=1), spread=timedelta(seconds=3)
        )
        wait_until(lambda: len(feed(pg_url)) >= 2000, timeout=90, interval=0.5)
        time.sleep(1.5)
    finally:
        logs = [stopped_log(server) for server in servers]
    fired = Counter((ticket, action["type"]) for ticket, action in feed(pg_url))
    assert sum(n for (_, kind), n in fired.items() if kind == "notify") == 1000
    assert sum(n for (_, kind), n in fired.items() if kind == "escalate") == 1000
    assert max(fired.values()) == 1
    per_replica = [int(m.group(1)) for log in logs for m in re.finditer(r"fired (\d+) timer decisions", log)]
    assert len(per_replica) == 3 and sum(per_replica) == 2000, logs
    assert sum(1 for n in per_replica if n > 0) >= 2, per_replica  # the replicas shared the work
    assert chain_ok(pg_url)


def import_due_timers(url: str, count: int, first_due: datetime, spread: timedelta) -> None:
    """`count` complaint timers (as `complaint-sla-fast` starts them: 预警 1 s before the deadline) whose
    deadlines fall within `spread` from `first_due`, loaded in bulk (the event path is tested elsewhere)."""
    calendar = always_open()
    timers, tickets = [], []
    for i in range(count):
        due = first_due + spread * i / count
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
        tickets.append((f"C-{i}", "complaint", {"kind": "complaint", "id": f"C-{i}", "owner": "王五"}))
    engine = make_engine(url)
    try:
        SqlTimerStore(engine).import_timers(tickets, timers, datetime.now(UTC))
    finally:
        engine.dispose()


def test_worker_command_fires_and_stops_cleanly(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    env = env_for(pg_url)
    server = start_server(env | {"RULESVC_WORKER_IN_SERVE": "false"}, tmp_path / "http.log")
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        worker = subprocess.Popen(
            [*rulesvc_command(), "worker"], env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        post(server, ingest_key(pg_url), complaint("c1", "C-1", datetime.now(UTC)))
        wait_until(lambda: len(feed(pg_url)) >= 3, timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        stop_server(server)
    assert "fired 2 timer decisions" in log.read_text(errors="replace")
    assert "fired" not in server.log.read_text(errors="replace")  # the HTTP server ran no worker
