"""`/metrics` on a real deployment: two `rulesvc serve` replicas and one `rulesvc worker` on PostgreSQL and
Redis that have decided events, fired timers (an SLA breached), delivered webhooks (one receiver failing
into dead letters), verified the chain and signed a checkpoint. Every metric of `docs/metrics.md` is
exported by both replicas, with values that match what happened; the database figures and the worker's
pushed figures are the same on both replicas."""

from __future__ import annotations

import http.server
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rulesvc.apikeys import Role
from rulesvc.decisions.service import create_api_key
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import SqlStore, make_engine
from tests.integration.conftest import (
    REDIS_URL,
    REPO,
    Server,
    cli_env,
    rulesvc_command,
    start_server,
    stop_server,
    unavailable,
)
from tests.integration.test_timers_processes import feed, import_due_timers
from tests.integration.timer_support import FAST_RULES, complaint, pg_url, wait_until  # noqa: F401

DOC = REPO / "docs" / "metrics.md"
CHECKPOINT_KEY = "11" * 32


def documented() -> dict[str, str]:
    """Name -> type, from the one table of docs/metrics.md."""
    rows = re.findall(r"^\| `(rulesvc_[a-z_]+)` \| (counter|gauge|histogram) \|", DOC.read_text(), re.M)
    assert rows, "no table in docs/metrics.md"
    return dict(rows)


def family_name(name: str, kind: str) -> str:
    return name.removesuffix("_total") if kind == "counter" else name


class Receiver:
    """A local webhook receiver answering `status` to every POST."""

    def __init__(self, status: int) -> None:
        self.received = 0
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                state.received += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def scrape(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/metrics", timeout=30)
    assert response.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def values(families: dict[str, Any], sample: str, **labels: str) -> list[float]:
    """Values of the samples named `sample` whose labels include `labels`."""
    found = []
    for family in families.values():
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                found.append(s.value)
    return found


def total(families: dict[str, Any], sample: str, **labels: str) -> float:
    return sum(values(families, sample, **labels))


@pytest.fixture
def redis_up() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    good, bad = Receiver(200), Receiver(500)
    yield good, bad
    good.close()
    bad.close()


def test_every_documented_metric_on_two_replicas_and_a_worker(
    pg_url: str,  # noqa: F811
    redis_up: None,
    receivers: tuple[Receiver, Receiver],
    tmp_path: Path,
) -> None:
    good, bad = receivers
    env = cli_env(
        pg_url,
        RULESVC_RULESETS=str(FAST_RULES),
        RULESVC_REDIS_URL=REDIS_URL,
        RULESVC_TIMER_POLL_INTERVAL="0.2",
        RULESVC_WORKER_IN_SERVE="false",
        RULESVC_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
        RULESVC_CHECKPOINT_KEY=CHECKPOINT_KEY,
        RULESVC_WEBHOOK_MAX_ATTEMPTS="2",
        RULESVC_WEBHOOK_BACKOFF_BASE="0.1",
        RULESVC_WEBHOOK_BACKOFF_MAX="0.2",
    )
    engine = make_engine(pg_url)
    try:
        roles = frozenset({Role.ADMIN, Role.INGEST, Role.AUDITOR})
        key = create_api_key(SqlStore(engine, group_commit=False), roles, SystemClock())[1]
    finally:
        engine.dispose()
    headers = {"Authorization": f"Bearer {key}"}
    first = start_server(env, tmp_path / "first.log")
    second = start_server(env, tmp_path / "second.log")
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        worker = subprocess.Popen(
            [*rulesvc_command(), "worker"], env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        for receiver in (good, bad):
            body = {"url": receiver.url, "kinds": ["complaint"], "description": "metrics test"}
            response = httpx.post(f"{first.base_url}/v1/webhooks", json=body, headers=headers, timeout=30)
            assert response.status_code == 201, response.text
        now = datetime.now(UTC)
        for index, server in enumerate((first, second, first)):
            body = complaint(f"m{index}", f"C-M{index}", now)
            response = httpx.post(f"{server.base_url}/v1/events", json=body, headers=headers, timeout=30)
            assert response.status_code == 200, response.text
        replay = httpx.post(
            f"{second.base_url}/v1/events", json=complaint("m0", "C-M0", now), headers=headers, timeout=30
        )
        assert replay.status_code == 200
        assert httpx.get(f"{second.base_url}/v1/nothing-here", timeout=30).status_code == 404
        # two timers due in half an hour: pending and due within the hour while the others fire
        import_due_timers(pg_url, 2, datetime.now(UTC) + timedelta(minutes=30), timedelta(minutes=1))

        def fired() -> bool:  # 预警 and 到期 of each complaint: start_timer, notify, escalate
            return sum(1 for _, a in feed(pg_url) if a["type"] == "escalate") >= 3

        wait_until(fired, timeout=60, interval=0.2)
        # the failing receiver: each ticket's first delivery is tried twice and becomes a dead letter, and
        # holds back that ticket's later deliveries (order per ticket): 3 dead letters, 6 pending
        try:
            wait_until(lambda: good.received >= 9 and bad.received >= 6, timeout=60, interval=0.2)
        except AssertionError:
            raise AssertionError((good.received, bad.received)) from None
        checkpoint = httpx.post(f"{first.base_url}/v1/audit/checkpoints", headers=headers, timeout=60)
        assert checkpoint.status_code == 200, checkpoint.text
        verify = httpx.get(f"{second.base_url}/v1/audit/verify", headers=headers, timeout=60)
        assert verify.json()["ok"] is True, verify.text
        for server in (first, second):
            assert httpx.get(f"{server.base_url}/readyz", timeout=30).status_code == 200

        def pushed() -> bool:  # the worker's heartbeat carries every attempt made so far
            scraped = scrape(second)
            return (
                total(scraped, "rulesvc_timer_fires_total") >= 6
                and total(scraped, "rulesvc_webhook_attempts_total", outcome="dead") >= 3
                and total(scraped, "rulesvc_webhook_attempts_total", outcome="delivered") >= 9
            )

        wait_until(pushed, timeout=30, interval=0.5)
        scraped = [scrape(first), scrape(second)]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker_exit = worker.wait(30)
        stop_server(first)
        stop_server(second)
    assert worker_exit == 0, log.read_text(errors="replace")

    table = documented()
    for families in scraped:
        missing = [n for n, kind in table.items() if family_name(n, kind) not in families]
        assert not missing, missing
        for name, kind in table.items():
            assert families[family_name(name, kind)].type == kind, name
        undocumented = sorted(
            n
            for n, f in families.items()
            if n.startswith("rulesvc_")
            and not n.endswith("_created")  # prometheus-client's creation times, one per counter/histogram
            and (n if f.type != "counter" else f"{n}_total") not in table
        )
        assert not undocumented, undocumented

    a, b = scraped
    for families in scraped:
        # decisions and HTTP, this replica's own
        assert total(families, "rulesvc_decisions_total", outcome="created") >= 1
        assert total(families, "rulesvc_http_request_duration_seconds_count") > 0
        assert values(families, "rulesvc_dependency_up", dependency="database") == [1.0]
        assert values(families, "rulesvc_dependency_up", dependency="redis") == [1.0]
        assert values(families, "rulesvc_ruleset_version", ruleset="complaint-sla-fast")[0] >= 1
        assert values(families, "rulesvc_db_pool_capacity", pool="api")[0] > 0
        assert values(families, "rulesvc_db_pool_in_use", pool="api")[0] >= 0
        # the database's figures
        assert values(families, "rulesvc_ops_read_ok") == [1.0]
        assert values(families, "rulesvc_timers_pending", calendar="24x7", timer="首次响应") == [2.0]
        assert values(families, "rulesvc_timers_due_next_hour", calendar="24x7") == [2.0]
        assert values(families, "rulesvc_timers_overdue", calendar="24x7") == [0.0]
        assert total(families, "rulesvc_sla_outcomes_total", outcome="breached") == 3
        assert sorted(values(families, "rulesvc_webhook_dead_letters")) == [0.0, 3.0]
        assert sorted(values(families, "rulesvc_webhook_pending")) == [0.0, 6.0]
        waiting = sorted(values(families, "rulesvc_webhook_oldest_pending_age_seconds"))
        assert waiting[0] == 0.0 and 0 < waiting[1] < 600
        assert (
            values(families, "rulesvc_chain_length")[0]
            >= values(families, "rulesvc_chain_checkpoint_seq")[0]
            > 0
        )
        assert values(families, "rulesvc_chain_verify_ok") == [1.0]
        assert (
            0
            <= datetime.now(UTC).timestamp() - values(families, "rulesvc_chain_verify_timestamp_seconds")[0]
            < 600
        )
        assert 0 <= values(families, "rulesvc_chain_checkpoint_age_seconds")[0] < 600
        assert values(families, "rulesvc_worker_up") == [1.0]
        # the worker's pushed figures
        assert total(families, "rulesvc_timer_fires_total") >= 6
        assert total(families, "rulesvc_timer_fire_lag_seconds_count") >= 6
        assert total(families, "rulesvc_timer_late_fires_total") == 0
        assert total(families, "rulesvc_webhook_attempts_total", outcome="delivered") >= 9
        assert total(families, "rulesvc_webhook_attempts_total", outcome="failed") >= 3
        assert total(families, "rulesvc_webhook_attempts_total", outcome="dead") >= 3
        assert total(families, "rulesvc_webhook_delivery_seconds_count") >= 15
        assert values(families, "rulesvc_db_pool_capacity", pool="worker")[0] > 0
        assert total(families, "rulesvc_worker_polls_total") > 0
    # the same database and worker figures on both replicas
    for sample in ("rulesvc_timers_pending", "rulesvc_webhook_dead_letters", "rulesvc_chain_verify_ok"):
        assert values(a, sample) == values(b, sample), sample
