"""The operational state `/metrics` reads from the database (`SqlOpsStatus`), on SQLite and PostgreSQL:
status rows written, replaced and forgotten; a worker's pushed figures shown with its `worker` label;
a worker whose heartbeat is old shown as gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.ops_metrics import OpsCollector
from rulesvc.opsstate import VERIFY, WORKER_PREFIX
from rulesvc.storage import make_engine
from rulesvc.storage.engine import migrate
from rulesvc.storage.ops_store import SqlOpsStatus
from scheduler.metrics import WorkerMetrics


def test_status_rows_and_the_figures_read_from_them(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        status = SqlOpsStatus(engine)
        now = datetime.now(UTC).replace(microsecond=0)
        empty = status.snapshot(now)
        assert empty.timers_pending == {} and empty.webhooks_dead == {} and empty.statuses == []

        metrics = WorkerMetrics()
        metrics.fired([0.5, 120.0])
        metrics.attempt("delivered", 0.02)
        metrics.rule_error("loan-sla", "rule.loop_limit")
        status.put(VERIFY, now, {"ok": False, "checked": 12})
        status.put(VERIFY, now, {"ok": True, "checked": 13})  # replaced, not duplicated
        status.put(f"{WORKER_PREFIX}h:1", now, {"families": metrics.families()}, started_at=now)
        status.put(f"{WORKER_PREFIX}h:2", now - timedelta(minutes=5), {"families": []}, started_at=now)
        status.put(f"{WORKER_PREFIX}h:3", now - timedelta(days=2), {"families": []})
        assert status.forget_before(WORKER_PREFIX, now - timedelta(days=1)) == 1

        collector = OpsCollector(status.snapshot, now=lambda: now)
        text = generate_latest(collector).decode()  # type: ignore[arg-type]
    finally:
        engine.dispose()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("rulesvc_chain_verify_ok", ())] == 1.0
    assert samples[("rulesvc_chain_verify_checked", ())] == 13.0
    assert samples[("rulesvc_worker_up", (("worker", "h:1"),))] == 1.0
    assert samples[("rulesvc_worker_up", (("worker", "h:2"),))] == 0.0
    assert ("rulesvc_worker_up", (("worker", "h:3"),)) not in samples
    assert samples[("rulesvc_timer_fires_total", (("worker", "h:1"),))] == 2.0
    assert samples[("rulesvc_timer_late_fires_total", (("worker", "h:1"),))] == 1.0
    assert samples[("rulesvc_timer_fire_lag_seconds_bucket", (("le", "+Inf"), ("worker", "h:1")))] == 2.0
    assert samples[("rulesvc_timer_fire_lag_seconds_bucket", (("le", "1.0"), ("worker", "h:1")))] == 1.0
    assert samples[("rulesvc_timer_fire_lag_seconds_sum", (("worker", "h:1"),))] == 120.5
    key = (
        "rulesvc_rule_errors_total",
        (("code", "rule.loop_limit"), ("ruleset", "loan-sla"), ("worker", "h:1")),
    )
    assert samples[key] == 1.0
    delivered = (("channel", "webhook"), ("outcome", "delivered"), ("worker", "h:1"))
    assert samples[("rulesvc_webhook_attempts_total", delivered)] == 1.0
    assert samples[("rulesvc_chain_length", ())] >= 0
    assert samples[("rulesvc_ops_read_ok", ())] == 1.0


def test_a_failing_read_is_reported_not_raised() -> None:
    def broken(_now: datetime) -> object:
        raise RuntimeError("database gone")

    text = generate_latest(OpsCollector(broken)).decode()  # type: ignore[arg-type]
    assert "rulesvc_ops_read_ok 0.0" in text
