"""Hot reload: a publication is in force on every replica within a second.

The publishing replica refreshes its own registry before answering, then announces on the `rulesets`
topic of a `Notifier` (Redis pub/sub across replicas). Every replica's watcher thread refreshes when told,
and also polls the store's publication counter every `poll_seconds`, so a lost notification or a Redis
outage costs at most one poll interval, never correctness.
"""

from __future__ import annotations

import logging
import threading

from rulesvc.delivery.notify import Notifier
from rulesvc.lifecycle.registry import BookRegistry

log = logging.getLogger("rulesvc.rulesets")

TOPIC = "rulesets"


class ReloadWatcher:
    def __init__(
        self, registry: BookRegistry, notifier: Notifier | None = None, poll_seconds: float = 1.0
    ) -> None:
        self.registry = registry
        self.notifier = notifier
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if notifier is not None:
            notifier.subscribe(self._on_notification)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rulesvc-ruleset-reload", daemon=True)
            self._thread.start()

    def announce(self) -> None:
        """After a publication here: in force here at once, then on the other replicas."""
        self.registry.refresh()
        if self.notifier is not None:
            self.notifier.publish(TOPIC)

    def _on_notification(self, topic: str) -> None:
        if topic == TOPIC:
            self._wake.set()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.registry.refresh()
                failing = False
            except Exception:
                if not failing:  # once per outage; the previous timeline stays in force
                    log.exception("reloading rulesets failed; still deciding on the previous versions")
                failing = True

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
