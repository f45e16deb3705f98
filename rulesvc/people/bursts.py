"""Sign-in failure bursts: failures counted per source (a person, an address, the OIDC callback) in a sliding
window; the failure that reaches the threshold is reported once (the caller appends a `signin` chain entry
naming the source, the count and the reasons), then counting starts again. One counter per process: every
replica reports its own bursts."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Burst:
    source: str
    failures: int
    first_at: datetime
    last_at: datetime
    reasons: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "failures": self.failures,
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "reasons": dict(sorted(self.reasons.items())),
        }


@dataclass
class FailureBursts:
    threshold: int
    window: timedelta
    on_burst: Callable[[Burst], None]
    max_sources: int = 10_000
    _seen: dict[str, deque[tuple[datetime, str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, source: str, reason: str, at: datetime) -> Burst | None:
        """Count one failure; the burst when this one reaches the threshold (also passed to `on_burst`)."""
        with self._lock:
            if source not in self._seen and len(self._seen) >= self.max_sources:
                self._prune(at)
            seen = self._seen.setdefault(source, deque())
            while seen and at - seen[0][0] > self.window:
                seen.popleft()
            seen.append((at, reason))
            if len(seen) < self.threshold:
                return None
            reasons: dict[str, int] = {}
            for _, why in seen:
                reasons[why] = reasons.get(why, 0) + 1
            burst = Burst(source, len(seen), seen[0][0], at, reasons)
            del self._seen[source]
        self.on_burst(burst)
        return burst

    def _prune(self, at: datetime) -> None:
        for source in [s for s, seen in self._seen.items() if not seen or at - seen[-1][0] > self.window]:
            del self._seen[source]
        while len(self._seen) >= self.max_sources:
            self._seen.pop(next(iter(self._seen)))
