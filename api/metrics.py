"""Prometheus metrics, one registry per app (several apps may live in one test process).

Under `rulesvc serve --workers N` each worker is a process: `serve` sets `PROMETHEUS_MULTIPROC_DIR`, and
`/metrics` then aggregates every worker's values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.ops_metrics import OpsCollector
from rulesvc.audit.evidence import refusals

RELOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SKEW_BUCKETS = (-3600.0, -600.0, -60.0, -10.0, -1.0, 0.0, 1.0, 10.0, 60.0, 300.0, 600.0, 3600.0)
"""Seconds an event's `occurred_at` is ahead of the server's clock: negative is late delivery (or a slow
clock), positive up to the tolerance (RULESVC_EVENT_CLOCK_SKEW, default 300) is a fast clock accepted,
beyond it refused (422 event.clock_skew)."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "rulesvc_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "rulesvc_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter("rulesvc_errors", "Error responses by error code", ["code"], registry=r)
        self.rule_errors = Counter(
            "rulesvc_rule_errors",
            "Events a ruleset failed to decide (unique-table conflict, loop limit, arithmetic), by ruleset",
            ["ruleset", "code"],
            registry=r,
        )
        self.decisions = Counter(
            "rulesvc_decisions",
            "Events decided (created) or answered from a stored decision (replayed)",
            ["outcome"],
            registry=r,
        )
        self.rules_fired = Counter("rulesvc_rules_fired", "Rules fired", ["ruleset", "rule"], registry=r)
        self.actions = Counter("rulesvc_actions", "Actions emitted", ["ruleset", "rule", "type"], registry=r)
        self.dependency_up = Gauge(
            "rulesvc_dependency_up",
            "1 when the last readiness probe reached the dependency (database, redis), else 0",
            ["dependency"],
            registry=r,
            multiprocess_mode="livemin",
        )

        self.clock_skew = Histogram(
            "rulesvc_clock_skew_seconds",
            "occurred_at minus the server's clock when an event is decided or refused for clock skew, by "
            "source (the caller: a ticket tool's key or account); positive = the source's clock is ahead",
            ["source"],
            buckets=SKEW_BUCKETS,
            registry=r,
        )

        self.clock_offset = Gauge(
            "rulesvc_clock_offset_seconds",
            "This replica's clock minus the PostgreSQL server's, measured by each readiness probe (replicas "
            "whose offsets differ disagree on event time; keep them within a second with NTP)",
            registry=r,
            multiprocess_mode="liveall",
        )

        r.register(_IntegrityRefusals())

        self._pool_in_use = Gauge(
            "rulesvc_db_pool_in_use",
            "Database connections checked out of the pool, by pool",
            ["pool"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self._pool_capacity = Gauge(
            "rulesvc_db_pool_capacity",
            "Connections the pool may open (size plus overflow), by pool",
            ["pool"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self._pool_waits = Counter(
            "rulesvc_db_pool_waits",
            "Checkouts that found every connection taken and waited, by pool",
            ["pool"],
            registry=r,
        )
        self._pool_timeouts = Counter(
            "rulesvc_db_pool_timeouts",
            "Checkouts that waited in vain (RULESVC_DB_POOL_TIMEOUT), by pool",
            ["pool"],
            registry=r,
        )
        self.ruleset_version = Gauge(
            "rulesvc_ruleset_version",
            "Version of each ruleset in force in this process (the lowest across a replica's processes)",
            ["ruleset"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.ruleset_reloads = Counter(
            "rulesvc_ruleset_reloads", "Ruleset or calendar publications loaded by this process", registry=r
        )
        self.ruleset_reload_lag = Histogram(
            "rulesvc_ruleset_reload_lag_seconds",
            "Seconds between a publication and this process deciding on it",
            buckets=RELOAD_BUCKETS,
            registry=r,
        )
        self.ops: OpsCollector | None = None

        self.calendar_coverage = Gauge(
            "rulesvc_calendar_coverage_days",
            "Days until a calendar's confirmed schedule ends (negative: already past; deadlines after it are "
            "provisional)",
            ["calendar"],
            registry=r,
            multiprocess_mode="livemin",
        )

    def observe_coverage(self, days: Mapping[str, int]) -> None:
        for calendar, left in days.items():
            self.calendar_coverage.labels(calendar).set(left)

    def observe_decision(
        self, created: bool, fired: Iterable[Mapping[str, Any]], actions: Iterable[Mapping[str, Any]]
    ) -> None:
        self.decisions.labels("created" if created else "replayed").inc()
        if not created:
            return
        for hit in fired:
            self.rules_fired.labels(str(hit.get("ruleset", "")), str(hit.get("rule", ""))).inc()
        for action in actions:
            ruleset, _, rule = str(action.get("rule", "")).partition("/")
            self.actions.labels(ruleset, rule, str(action.get("type", ""))).inc()

    # PoolObserver (rulesvc.wiring.ops)
    def pool_in_use(self, pool: str, delta: int) -> None:
        self._pool_in_use.labels(pool).inc(delta)

    def pool_capacity(self, pool: str, size: int) -> None:
        self._pool_capacity.labels(pool).set(size)
        self._pool_waits.labels(pool)  # exported as 0 until the first wait
        self._pool_timeouts.labels(pool)

    def pool_waited(self, pool: str) -> None:
        self._pool_waits.labels(pool).inc()

    def pool_timed_out(self, pool: str) -> None:
        self._pool_timeouts.labels(pool).inc()

    def reloaded(self, versions: Mapping[str, int], lag_seconds: float | None) -> None:
        """`rulesvc.lifecycle.registry.ReloadListener` (None: the state at start, not a reload)."""
        if lag_seconds is not None:
            self.ruleset_reloads.inc()
            self.ruleset_reload_lag.observe(max(0.0, lag_seconds))
        for name, version in versions.items():
            self.ruleset_version.labels(name).set(version)

    def render(self) -> bytes:
        """This process's (or, under `serve --workers N`, every process's) metrics, then those read from the
        database (`OpsCollector`, workers' pushed figures included), one family per name."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            sources: list[Any] = [registry]
        else:
            sources = [self.registry]
        if self.ops is not None:
            sources.append(self.ops)
        return generate_latest(_Merged(sources))


class _Merged:
    """Families of several collectors as one exposition: a family both export (`rulesvc_rule_errors` of the
    API and of workers) becomes one, samples concatenated."""

    def __init__(self, sources: Iterable[Any]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for source in self.sources:
            for family in source.collect():
                known = merged.get(family.name)
                if known is None:
                    merged[family.name] = family
                elif known.type == family.type:
                    known.samples.extend(family.samples)
        return list(merged.values())


class _IntegrityRefusals(Collector):
    """Uses refused because a row no longer matched the audit chain (a feed page, a webhook body, a ticket's
    state: `rulesvc.audit.evidence.refuse`), by table, in this process."""

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "rulesvc_integrity_refusals",
            "Uses refused because the row did not match the audit chain, by table",
            labels=["table"],
        )
        for table, count in sorted(refusals().items()):
            family.add_metric([table], count)
        yield family
