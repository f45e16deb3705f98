"""The worker's metrics, pushed through the database: every few seconds a worker writes its heartbeat row
(`ops_status`, `worker:<host>:<pid>`) carrying its counters and histograms, and every replica's `/metrics`
shows them with a `worker` label (`docs/metrics.md`). One scrape target for the whole service, whichever
process fired the timers; a worker that stops beating is seen as gone (`rulesvc_worker_up` 0).

Plain counters, not prometheus-client objects: a worker inside `rulesvc serve --workers N` shares the
process with prometheus-client's multiprocess files, which would export its figures a second time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError

from rulesvc.opsstate import LATE_AFTER, WORKER_PREFIX, OpsStatus
from rulesvc.sla.clock import Clock

log = logging.getLogger("rulesvc.scheduler")

LAG_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RELOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"

SPECS: dict[str, tuple[str, str, Sequence[float]]] = {
    "rulesvc_timer_fires": (COUNTER, "Timer points fired (one decision each)", ()),
    "rulesvc_timer_fire_lag_seconds": (
        HISTOGRAM,
        "Seconds between a timer point's scheduled time and its firing",
        LAG_BUCKETS,
    ),
    "rulesvc_timer_late_fires": (
        COUNTER,
        f"Timer points fired more than {LATE_AFTER.total_seconds():g} s after their time",
        (),
    ),
    "rulesvc_timer_replans": (COUNTER, "Timers moved by re-planning after a calendar publication", ()),
    "rulesvc_timer_refusals": (
        COUNTER,
        "Tickets not fired because their state no longer matched the audit chain",
        (),
    ),
    "rulesvc_rule_errors": (
        COUNTER,
        "Events a ruleset failed to decide (unique-table conflict, loop limit, arithmetic), by ruleset",
        (),
    ),
    "rulesvc_webhook_attempts": (
        COUNTER,
        "Delivery attempts (webhooks and notification channels) by channel and outcome",
        (),
    ),
    "rulesvc_webhook_delivery_seconds": (
        HISTOGRAM,
        "Seconds a delivery attempt took (POST or SMTP session to answer or error), by channel",
        SEND_BUCKETS,
    ),
    "rulesvc_worker_polls": (COUNTER, "Timer polls run", ()),
    "rulesvc_db_pool_in_use": (GAUGE, "Database connections checked out of the pool", ()),
    "rulesvc_db_pool_capacity": (GAUGE, "Connections the pool may open (size plus overflow)", ()),
    "rulesvc_db_pool_waits": (COUNTER, "Checkouts that found every connection taken and waited", ()),
    "rulesvc_db_pool_timeouts": (COUNTER, "Checkouts that waited in vain (pool timeout)", ()),
    "rulesvc_ruleset_reloads": (COUNTER, "Ruleset publications loaded by this process", ()),
    "rulesvc_ruleset_reload_lag_seconds": (
        HISTOGRAM,
        "Seconds between a publication and this process deciding on it",
        RELOAD_BUCKETS,
    ),
    "rulesvc_ruleset_version": (GAUGE, "Version of each ruleset in force in this process", ()),
}

Labels = tuple[tuple[str, str], ...]


class Tally:
    """Thread-safe counters, gauges and histograms of `SPECS`, serialised as metric families."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], list[float]] = {}
        """Per bucket counts (one more for +Inf), then sum."""

    def inc(self, name: str, labels: Labels = (), amount: float = 1.0) -> None:
        with self._lock:
            self._values[(name, labels)] = self._values.get((name, labels), 0.0) + amount

    def set(self, name: str, labels: Labels, value: float) -> None:
        with self._lock:
            self._values[(name, labels)] = value

    def observe(self, name: str, values: Iterable[float], labels: Labels = ()) -> None:
        buckets = SPECS[name][2]
        with self._lock:
            counts = self._histograms.setdefault((name, labels), [0.0] * (len(buckets) + 2))
            for value in values:
                for index, bound in enumerate(buckets):
                    if value <= bound:
                        counts[index] += 1
                        break
                else:
                    counts[len(buckets)] += 1
                counts[-1] += value

    def value(self, name: str, labels: Labels = ()) -> float:
        with self._lock:
            return self._values.get((name, labels), 0.0)

    def families(self) -> list[dict[str, Any]]:
        """`[{"name", "type", "help", "samples": [[sample name, {labels}, value], ...]}]`."""
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for (name, labels), value in sorted(self._values.items()):
                kind, help_text, _ = SPECS[name]
                family = out.setdefault(name, {"name": name, "type": kind, "help": help_text, "samples": []})
                sample = f"{name}_total" if kind == COUNTER else name
                family["samples"].append([sample, dict(labels), value])
            for (name, labels), counts in sorted(self._histograms.items()):
                kind, help_text, buckets = SPECS[name]
                family = out.setdefault(name, {"name": name, "type": kind, "help": help_text, "samples": []})
                cumulative = 0.0
                for bound, count in zip([*buckets, float("inf")], counts, strict=False):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else repr(float(bound))
                    family["samples"].append([f"{name}_bucket", {**dict(labels), "le": le}, cumulative])
                family["samples"].append([f"{name}_count", dict(labels), cumulative])
                family["samples"].append([f"{name}_sum", dict(labels), counts[-1]])
        return list(out.values())


class WorkerMetrics(Tally):
    """What the poller, the deliverer, the pool and the ruleset reloads of one worker count."""

    def __init__(self) -> None:
        super().__init__()
        for name in (
            "rulesvc_timer_fires",
            "rulesvc_timer_late_fires",
            "rulesvc_timer_replans",
            "rulesvc_timer_refusals",
            "rulesvc_worker_polls",
            "rulesvc_ruleset_reloads",
        ):
            self.inc(name, amount=0)  # exported as 0 from the start

    def fired(self, late_by: Sequence[float]) -> None:
        if not late_by:
            return
        self.inc("rulesvc_timer_fires", amount=len(late_by))
        self.observe("rulesvc_timer_fire_lag_seconds", late_by)
        late = sum(1 for lag in late_by if lag > LATE_AFTER.total_seconds())
        if late:
            self.inc("rulesvc_timer_late_fires", amount=late)

    def rule_error(self, ruleset: str, code: str) -> None:
        self.inc("rulesvc_rule_errors", (("code", code), ("ruleset", ruleset)))

    def attempt(self, outcome: str, seconds: float | None = None, channel: str = "webhook") -> None:
        """One delivery attempt; `channel`: `webhook`, or a notification channel's type (`wecom`,
        `dingtalk`, `email`)."""
        self.inc("rulesvc_webhook_attempts", (("channel", channel), ("outcome", outcome)))
        if seconds is not None:
            self.observe("rulesvc_webhook_delivery_seconds", [seconds], (("channel", channel),))

    # PoolObserver (rulesvc.wiring.ops)
    def pool_in_use(self, pool: str, delta: int) -> None:
        self.inc("rulesvc_db_pool_in_use", (("pool", pool),), delta)

    def pool_capacity(self, pool: str, size: int) -> None:
        self.set("rulesvc_db_pool_capacity", (("pool", pool),), size)
        self.inc("rulesvc_db_pool_waits", (("pool", pool),), 0)  # exported as 0 until the first wait
        self.inc("rulesvc_db_pool_timeouts", (("pool", pool),), 0)

    def pool_waited(self, pool: str) -> None:
        self.inc("rulesvc_db_pool_waits", (("pool", pool),))

    def pool_timed_out(self, pool: str) -> None:
        self.inc("rulesvc_db_pool_timeouts", (("pool", pool),))

    # ReloadObserver (rulesvc.lifecycle.registry)
    def reloaded(self, versions: dict[str, int], lag_seconds: float | None) -> None:
        """`rulesvc.lifecycle.registry.ReloadListener`: None is the state at start (not a reload)."""
        if lag_seconds is not None:
            self.inc("rulesvc_ruleset_reloads")
            self.observe("rulesvc_ruleset_reload_lag_seconds", [max(0.0, lag_seconds)])
        self.in_force(versions)

    def in_force(self, versions: dict[str, int]) -> None:
        for name, version in versions.items():
            self.set("rulesvc_ruleset_version", (("ruleset", name),), version)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Writes this worker's status row (its metrics) every beat; forgets workers silent for a day."""

    def __init__(
        self, status: OpsStatus, metrics: WorkerMetrics, clock: Clock, name: str | None = None
    ) -> None:
        self.status = status
        self.metrics = metrics
        self.clock = clock
        self.name = WORKER_PREFIX + (name or worker_name())
        self.started_at: datetime = clock.now()

    def beat(self) -> None:
        now = self.clock.now()
        try:
            self.status.put(self.name, now, {"families": self.metrics.families()}, started_at=self.started_at)
            self.status.forget_before(WORKER_PREFIX, now - timedelta(days=1))
        except DBAPIError as exc:
            log.warning("worker heartbeat failed, retrying at the next beat: %s", exc.orig or exc)
