"""Wake-ups of the background worker's jobs: a burst of notifications (one per decision under load) is
served by a few runs, each starting at least `min_wake_gap` after the previous one, and none is lost."""

from __future__ import annotations

import threading
import time

from rulesvc.delivery.notify import TIMERS
from scheduler.config import WorkerConfig
from scheduler.runner import Worker


class CountingPoller:
    def __init__(self) -> None:
        self.starts: list[float] = []
        self.lock = threading.Lock()

    def poll(self) -> None:
        with self.lock:
            self.starts.append(time.monotonic())

    def stop(self) -> None:
        pass


def test_a_burst_of_wake_ups_runs_the_job_a_few_times_spaced_by_the_gap() -> None:
    poller = CountingPoller()
    config = WorkerConfig(webhooks=False, poll_interval=60, min_wake_gap=0.1)
    worker = Worker(config, poller=poller)  # type: ignore[arg-type]
    worker.start()
    try:
        time.sleep(0.2)  # the first (scheduled) run
        assert len(poller.starts) == 1
        burst_start = time.monotonic()
        for _ in range(200):
            worker._on_notification(TIMERS)
            time.sleep(0.002)
        burst = time.monotonic() - burst_start
        time.sleep(0.4)
        runs = poller.starts[1:]
        # without spacing every wake-up would run the job; with it, about one run per gap
        assert 2 <= len(runs) <= burst / 0.1 + 2
        gaps = [b - a for a, b in zip(poller.starts, poller.starts[1:], strict=False)]
        assert min(gaps) >= 0.1 - 0.01
        # the last wake-up is served: a run starts after it
        assert poller.starts[-1] >= burst_start + burst - 0.1
    finally:
        worker.stop()


def test_a_single_wake_up_after_a_quiet_period_runs_at_once() -> None:
    poller = CountingPoller()
    worker = Worker(WorkerConfig(webhooks=False, poll_interval=60, min_wake_gap=0.5), poller=poller)  # type: ignore[arg-type]
    worker.start()
    try:
        time.sleep(0.7)  # first run, then longer than the gap
        woken = time.monotonic()
        worker._on_notification(TIMERS)
        deadline = time.monotonic() + 2
        while len(poller.starts) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(poller.starts) == 2 and poller.starts[1] - woken < 0.25
    finally:
        worker.stop()
