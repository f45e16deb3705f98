"""Rate limits on sign-in and on invalid API keys, per client address: at most `limit` events in a sliding
`window`; past it the caller is told how long to wait (HTTP 429 with `Retry-After`). The first refusal of
an address in a window is reported once (`on_trip`: a `signin` chain entry naming the address, what was
limited and how many attempts). One limiter per process: each replica limits what it sees.

Keys are addresses as the service sees them (the TCP peer, or the forwarded address when uvicorn runs
with `--proxy-headers` behind a trusted proxy)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        limit: int,
        window_seconds: float,
        on_trip: Callable[[str, int], None] | None = None,
        now: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._on_trip = on_trip or (lambda _key, _count: None)
        self._now = now
        self._max_keys = max_keys
        self._seen: dict[str, deque[float]] = {}
        self._tripped: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def _recent(self, key: str, now: float) -> deque[float]:
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= self._max_keys:
                self._prune(now)
            seen = self._seen[key] = deque()
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        return seen

    def _prune(self, now: float) -> None:
        for key in [k for k, seen in self._seen.items() if not seen or now - seen[-1] >= self.window]:
            self._seen.pop(key, None)
            self._tripped.pop(key, None)
        while len(self._seen) >= self._max_keys:
            key = next(iter(self._seen))
            self._seen.pop(key)
            self._tripped.pop(key, None)

    def retry_after(self, key: str) -> int | None:
        """Seconds to wait when `key` is at its limit now (nothing counted), else None."""
        if not self.enabled:
            return None
        with self._lock:
            now = self._now()
            seen = self._recent(key, now)
            if len(seen) < self.limit:
                return None
            return max(1, math.ceil(self.window - (now - seen[0])))

    def hit(self, key: str) -> int | None:
        """Count one event; the seconds to wait when it is over the limit (then it is not counted)."""
        if not self.enabled:
            return None
        trip = None
        with self._lock:
            now = self._now()
            seen = self._recent(key, now)
            if len(seen) < self.limit:
                seen.append(now)
                return None
            wait = max(1, math.ceil(self.window - (now - seen[0])))
            last = self._tripped.get(key)
            if last is None or now - last >= self.window:
                self._tripped[key] = now
                trip = len(seen) + 1
        if trip is not None:
            self._on_trip(key, trip)
        return wait
