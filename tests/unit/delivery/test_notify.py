"""In-process wake-up notifications."""

from __future__ import annotations

import threading
import time

from rulesvc.delivery.notify import LocalNotifier


def test_wait_returns_when_a_notification_arrives() -> None:
    notifier = LocalNotifier()
    seen = notifier.version("actions")
    threading.Timer(0.05, notifier.publish, args=("actions",)).start()
    started = time.monotonic()
    assert notifier.wait("actions", seen, timeout=5) == seen + 1
    assert time.monotonic() - started < 2


def test_wait_times_out_and_topics_are_separate() -> None:
    notifier = LocalNotifier()
    notifier.publish("timers")
    assert notifier.wait("actions", 0, timeout=0.05) == 0
    assert notifier.version("timers") == 1


def test_listeners_are_called_and_their_failures_contained() -> None:
    notifier = LocalNotifier()
    got: list[str] = []

    def broken(_topic: str) -> None:
        raise RuntimeError("boom")

    notifier.subscribe(broken)
    notifier.subscribe(got.append)
    notifier.publish("timers")
    assert got == ["timers"]
