"""What operations watch that only the database knows: timers pending, webhooks piling up, the chain's
length, the last verify, each worker's heartbeat. Every replica reads the same rows at scrape time, so these
figures are true across replicas (`docs/metrics.md`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

LATE_AFTER = timedelta(seconds=60)
"""A timer point not fired this long after its time is late (`rulesvc_timers_overdue`,
`rulesvc_timer_late_fires_total`)."""

VERIFY = "verify"
"""The `ops_status` row holding the last audit verify: `{"ok", "checked"}` and the rest of its answer (at
most `VERIFY_PROBLEMS` problems), which the console's 审计 page shows."""
VERIFY_PROBLEMS = 100

WORKER_PREFIX = "worker:"
"""`ops_status` rows of workers: `worker:<host>:<pid>`, payload `{"families": [...]}` (their metrics)."""


@dataclass(frozen=True)
class StatusRow:
    name: str
    at: datetime
    started_at: datetime | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class OpsSnapshot:
    at: datetime
    timers_pending: dict[tuple[str, str], int] = field(default_factory=dict)
    """(calendar, timer) -> timers with a point still to fire."""
    timers_due_next_hour: dict[str, int] = field(default_factory=dict)
    """calendar -> pending timers whose deadline falls within the next hour."""
    timers_overdue: dict[str, int] = field(default_factory=dict)
    """calendar -> pending timers whose next point is more than `LATE_AFTER` past and not fired."""
    subscriptions: list[str] = field(default_factory=list)
    """Active webhook subscriptions (each has its webhook gauges, zero when nothing is waiting)."""
    webhooks_pending: dict[str, int] = field(default_factory=dict)
    webhooks_dead: dict[str, int] = field(default_factory=dict)
    webhooks_oldest_pending: dict[str, datetime] = field(default_factory=dict)
    sla_outcomes: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(kind, timer, outcome) -> finished timer generations (met, breached)."""
    chain_length: int = 0
    statuses: list[StatusRow] = field(default_factory=list)


class OpsStatus(Protocol):
    def snapshot(self, now: datetime) -> OpsSnapshot: ...

    def put(
        self, name: str, at: datetime, payload: dict[str, Any], started_at: datetime | None = None
    ) -> None:
        """Insert or replace the status row `name`."""
        ...

    def get(self, name: str) -> StatusRow | None:
        """The status row `name`, if written."""
        ...

    def forget_before(self, prefix: str, before: datetime) -> int:
        """Delete rows named `prefix...` last written before `before` (workers long gone)."""
        ...
