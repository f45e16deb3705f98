"""How the background worker runs: intervals, batch sizes, concurrency."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerConfig:
    timers: bool = True
    """Run the timer poller."""
    webhooks: bool = True
    """Run webhook fan-out and delivery."""
    poll_interval: float = 0.5
    """Seconds between timer polls (a wake-up notification polls at once)."""
    timer_batch: int = 100
    """Tickets locked per claim transaction."""
    replan_batch: int = 500
    """Tickets locked per re-plan claim (timers of a newly published calendar version)."""
    replan_lanes: int = 2
    """Re-plan claims run at once (PostgreSQL, a worker process of its own)."""
    replan_seconds: float = 2.0
    """Seconds of re-planning per poll at most, so that due points keep firing during a long re-plan."""
    min_wake_gap: float = 0.05
    """Seconds between two wake-up runs of a job (wake-ups in between share the next run)."""
    delivery_interval: float = 0.5
    delivery_batch: int = 50
    delivery_concurrency: int = 8
    fanout_batch: int = 1000
    rollup_interval: float = 300.0
    """Seconds between two runs of the job rolling up the reports' closed days (PostgreSQL)."""
    heartbeat_interval: float = 5.0
    """Seconds between two heartbeats (the worker's status row and metrics, `scheduler.metrics`)."""
    liveness_max_age: float = 60.0
    """Seconds without a heartbeat after which the worker's `/healthz` answers 503 (`scheduler.health`): a
    beat can take the database's statement timeout (30 s) on top of the interval before the next starts."""
