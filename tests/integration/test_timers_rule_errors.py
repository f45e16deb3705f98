"""A rule error while a timer point fires (the worker, no HTTP request to answer it) is counted in
`rulesvc_rule_errors_total{ruleset, code}` by the worker, pushed with its heartbeat and shown with its
`worker` label on every API replica's `/metrics`; the ticket's point is retried later, counted again, and
the other tickets of the claim fire. On SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.ops_metrics import OpsCollector
from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from rulesvc.sla.clock import VirtualClock
from rulesvc.storage.ops_store import SqlOpsStatus
from scheduler.build import WorkerParts, build_worker
from tests.integration.timer_support import Events, timer_url  # noqa: F401

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
TIMER_RULES = Path(__file__).with_name("timer_rules")

KIND = """\
kind: share
description: 分摊（测试用）
fields:
  kind: string
  id: string
  amount: number
  people: number
"""

RULESET = """\
ruleset: 到期分摊
kind: share
rules:
  - id: 开始计时
    on: [ticket.created]
    then:
      - start_timer: {timer: 分摊时限, duration: 10s, calendar: "24x7"}
  - id: 到期按人分摊
    on: [timer.due]
    when: timer.name == "分摊时限"
    then:
      - trigger_payment: {amount: "= ticket.amount / ticket.people"}
"""

ERROR = (("code", "rule.arithmetic"), ("ruleset", "到期分摊"))


@pytest.fixture
def parts(timer_url: str, tmp_path: Path) -> Iterator[WorkerParts]:  # noqa: F811
    folder = tmp_path / "rules"
    shutil.copytree(TIMER_RULES / "calendars", folder / "calendars")
    (folder / "kinds").mkdir()
    (folder / "kinds" / "share.yaml").write_text(KIND, encoding="utf-8")
    (folder / "share.yaml").write_text(RULESET, encoding="utf-8")
    built = build_worker(
        timer_url, RuleBook.load([folder]), Settings().mask_policy(), clock=VirtualClock(T0), rollups=False
    )
    yield built
    built.worker.stop()


def share(ticket_id: str, people: int) -> dict[str, object]:
    return {
        "event_id": f"{ticket_id}-created",
        "type": "ticket.created",
        "occurred_at": T0.isoformat(),
        "ticket": {"kind": "share", "id": ticket_id, "amount": 300, "people": people},
    }


def test_a_rule_error_at_a_timer_point_is_counted_by_the_worker_and_shown_on_metrics(
    parts: WorkerParts,
) -> None:
    clock = parts.timers.clock
    assert isinstance(clock, VirtualClock)
    events = Events(parts.engine, parts.timers.book)
    events.send(share("S-0", 0), T0)  # 300 / 0 at the deadline
    events.send(share("S-3", 3), T0)
    clock.set(T0 + timedelta(seconds=11))
    parts.poller.poll()
    assert parts.metrics.value("rulesvc_rule_errors", ERROR) == 1
    assert parts.poller.stats.decisions == 1  # S-3's point fired beside it

    clock.set(T0 + timedelta(seconds=11) + parts.timers.retry_delay)  # S-0's point is tried again
    parts.poller.poll()
    assert parts.metrics.value("rulesvc_rule_errors", ERROR) == 2

    parts.heartbeat.beat()  # the worker's figures go with its status row; any API replica shows them
    status = SqlOpsStatus(parts.engine)
    now = datetime.now(UTC)
    text = generate_latest(OpsCollector(status.snapshot, now=lambda: now)).decode()  # type: ignore[arg-type]
    samples = [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "rulesvc_rule_errors_total"
    ]
    assert [(labels["ruleset"], labels["code"], value) for labels, value in samples] == [
        ("到期分摊", "rule.arithmetic", 2.0)
    ]
    assert samples[0][0]["worker"] == parts.heartbeat.name.removeprefix("worker:")
