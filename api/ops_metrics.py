"""Metrics read at scrape time: the database's operational state (`rulesvc.opsstate`: timers, webhooks,
chain, verify, workers and the metrics workers push with their heartbeat) and the newest signed checkpoint.

Every replica reads the same rows, so these figures are the same on every replica: aggregate them with
`max without (instance)` rather than `sum` (`docs/metrics.md`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rulesvc.opsstate import VERIFY, WORKER_PREFIX, OpsSnapshot

log = logging.getLogger("rulesvc.metrics")

WORKER_GONE_AFTER = timedelta(seconds=30)
"""A worker whose heartbeat (every 5 s) is older than this counts as gone (`rulesvc_worker_up` 0)."""

CHECKPOINT_CACHE_SECONDS = 30.0
"""The checkpoint directory is read at most this often (every file is read to find the newest)."""

CheckpointReader = Callable[[], tuple[int, datetime] | None]


class OpsCollector(Collector):
    def __init__(
        self,
        read: Callable[[datetime], OpsSnapshot],
        checkpoint: CheckpointReader | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.read = read
        self.checkpoint = checkpoint
        self.now = now
        self._lock = threading.Lock()
        self._checkpoint_cache: tuple[float, tuple[int, datetime] | None] | None = None

    def collect(self) -> Iterable[Metric]:
        now = self.now()
        up = GaugeMetricFamily(
            "rulesvc_ops_read_ok", "1 when this scrape could read the operational state from the database"
        )
        try:
            snapshot = self.read(now)
        except Exception as exc:
            log.warning("metrics: reading the operational state failed: %s", exc)
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            yield from snapshot_families(snapshot)
        yield from self._checkpoint_families(now)

    def _checkpoint_families(self, now: datetime) -> Iterable[Metric]:
        if self.checkpoint is None:
            return
        with self._lock:
            cached = self._checkpoint_cache
            if cached is None or time.monotonic() - cached[0] > CHECKPOINT_CACHE_SECONDS:
                try:
                    cached = (time.monotonic(), self.checkpoint())
                except Exception as exc:
                    log.warning("metrics: reading the checkpoint directory failed: %s", exc)
                    cached = (time.monotonic(), None)
                self._checkpoint_cache = cached
        latest = cached[1]
        if latest is None:
            return
        seq, at = latest
        yield _gauge(
            "rulesvc_chain_checkpoint_seq", "Chain length the newest signed checkpoint vouches for", seq
        )
        yield _gauge(
            "rulesvc_chain_checkpoint_age_seconds",
            "Seconds since the newest signed checkpoint was made",
            (now - at).total_seconds(),
        )
        yield _gauge(
            "rulesvc_chain_checkpoint_timestamp_seconds",
            "When the newest signed checkpoint was made (Unix time)",
            at.timestamp(),
        )

    def forget_checkpoint(self) -> None:
        """Read the checkpoint directory again at the next scrape (after making a checkpoint)."""
        with self._lock:
            self._checkpoint_cache = None


def snapshot_families(s: OpsSnapshot) -> Iterable[Metric]:
    pending = GaugeMetricFamily(
        "rulesvc_timers_pending",
        "Timers with a point still to fire (not paused), by calendar and timer",
        labels=["calendar", "timer"],
    )
    for (calendar, timer), count in sorted(s.timers_pending.items()):
        pending.add_metric([calendar, timer], count)
    yield pending
    calendars = sorted({c for c, _ in s.timers_pending} | set(s.timers_due_next_hour) | set(s.timers_overdue))
    due = GaugeMetricFamily(
        "rulesvc_timers_due_next_hour",
        "Pending timers whose deadline falls within the next hour, by calendar",
        labels=["calendar"],
    )
    overdue = GaugeMetricFamily(
        "rulesvc_timers_overdue",
        "Pending timers whose next point is over 60 s past and not fired yet, by calendar",
        labels=["calendar"],
    )
    for calendar in calendars:
        due.add_metric([calendar], s.timers_due_next_hour.get(calendar, 0))
        overdue.add_metric([calendar], s.timers_overdue.get(calendar, 0))
    yield due
    yield overdue
    outcomes = CounterMetricFamily(
        "rulesvc_sla_outcomes",
        "Finished SLA timer generations by ticket kind, timer and outcome (met, breached)",
        labels=["kind", "timer", "outcome"],
    )
    for (kind, timer, outcome), count in sorted(s.sla_outcomes.items()):
        outcomes.add_metric([kind, timer, outcome], count)
    yield outcomes

    subscriptions = sorted(set(s.subscriptions) | set(s.webhooks_pending) | set(s.webhooks_dead))
    waiting = GaugeMetricFamily(
        "rulesvc_webhook_pending",
        "Webhook deliveries not delivered yet, by subscription",
        labels=["subscription"],
    )
    dead = GaugeMetricFamily(
        "rulesvc_webhook_dead_letters",
        "Webhook deliveries given up after the last attempt (dead letters), by subscription",
        labels=["subscription"],
    )
    oldest = GaugeMetricFamily(
        "rulesvc_webhook_oldest_pending_age_seconds",
        "Age of the oldest delivery not delivered yet (0 when none), by subscription",
        labels=["subscription"],
    )
    for subscription in subscriptions:
        waiting.add_metric([subscription], s.webhooks_pending.get(subscription, 0))
        dead.add_metric([subscription], s.webhooks_dead.get(subscription, 0))
        first = s.webhooks_oldest_pending.get(subscription)
        oldest.add_metric([subscription], max(0.0, (s.at - first).total_seconds()) if first else 0.0)
    yield waiting
    yield dead
    yield oldest

    yield _gauge("rulesvc_chain_length", "Entries in the audit chain (its head's seq)", s.chain_length)
    up = GaugeMetricFamily(
        "rulesvc_worker_up",
        f"1 when the worker's heartbeat is under {WORKER_GONE_AFTER.total_seconds():g} s old, else 0",
        labels=["worker"],
    )
    seen = GaugeMetricFamily(
        "rulesvc_worker_last_seen_timestamp_seconds",
        "The worker's last heartbeat (Unix time)",
        labels=["worker"],
    )
    started = GaugeMetricFamily(
        "rulesvc_worker_start_time_seconds", "When the worker started (Unix time)", labels=["worker"]
    )
    pushed: list[Metric] = []
    for row in s.statuses:
        if row.name == VERIFY:
            yield _gauge(
                "rulesvc_chain_verify_ok",
                "1 when the last audit verify passed, 0 when it failed",
                bool(row.payload.get("ok")),
            )
            yield _gauge(
                "rulesvc_chain_verify_timestamp_seconds",
                "When the audit chain was last verified (Unix time)",
                row.at.timestamp(),
            )
            yield _gauge(
                "rulesvc_chain_verify_checked",
                "Entries the last audit verify checked",
                float(row.payload.get("checked", 0)),
            )
        elif row.name.startswith(WORKER_PREFIX):
            worker = row.name[len(WORKER_PREFIX) :]
            alive = s.at - row.at < WORKER_GONE_AFTER
            up.add_metric([worker], 1 if alive else 0)
            seen.add_metric([worker], row.at.timestamp())
            if row.started_at is not None:
                started.add_metric([worker], row.started_at.timestamp())
            pushed.extend(worker_families(row.payload.get("families", []), worker))
    yield up
    yield seen
    yield started
    yield from pushed


def worker_families(families: Any, worker: str) -> Iterable[Metric]:
    """A worker's pushed families (`scheduler.metrics.Tally.families`), each sample labelled `worker`."""
    if not isinstance(families, list):
        return
    for family in families:
        try:
            metric = Metric(str(family["name"]), str(family["help"]), str(family["type"]))
            for name, labels, value in family["samples"]:
                metric.add_sample(
                    str(name), {**{str(k): str(v) for k, v in labels.items()}, "worker": worker}, float(value)
                )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        yield metric


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))
