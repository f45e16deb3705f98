"""Rate limits on sign-in and on invalid API keys, per client address: at most `limit` events in a sliding
`window`; past it the caller is told how long to wait (HTTP 429 with `Retry-After`). The first refusal of
an address in a window is reported once (`on_trip`: a `signin` chain entry naming the address, what was
limited and how many attempts). `RateLimiter` counts in its process; `SharedRateLimiter` counts in Redis,
across every replica (the service uses it when `RULESVC_REDIS_URL` is set).

Keys are addresses as the service sees them (the TCP peer, or the forwarded address when uvicorn runs
with `--proxy-headers` behind a trusted proxy)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rulesvc.entropy import token_hex

log = logging.getLogger("rulesvc.people")


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


# KEYS[1]: the sorted set of an address's recent events (score: time in ms); ARGV: now ms, window ms, limit,
# member (unique), count (1: count the event when under the limit; 0: only look). Returns the ms to wait (0:
# under the limit) and the number of events in the window.
_SLIDING_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
local seen = redis.call('ZCARD', KEYS[1])
if seen < tonumber(ARGV[3]) then
  if ARGV[5] == '1' then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  return {0, seen}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
return {math.max(1, oldest + ARGV[2] - ARGV[1]), seen}
"""


class SharedRateLimiter(RateLimiter):
    """The same limit counted across every replica and process, in Redis: one sorted set per address
    (`<prefix><address>`, kept a window long), updated by one script so that racing replicas count alike.
    The first refusal of an address in a window is reported by the one replica that sets the address's
    `<prefix>tripped:<address>` key. While Redis does not answer, each process limits what it sees (the
    per-process limiter underneath), rather than letting every attempt through."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        limit: int,
        window_seconds: float,
        on_trip: Callable[[str, int], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(limit, window_seconds, on_trip)
        self.client = client
        self.prefix = prefix
        self._wall = wall
        self._script = client.register_script(_SLIDING_WINDOW)
        self._degraded = False

    def _shared(self, key: str, count: bool) -> tuple[int, int] | None:
        """(ms to wait, events in the window) from Redis; None without a limit or when Redis does not answer
        (then this process's own count decides)."""
        if not self.enabled:
            return None
        now = int(self._wall() * 1000)
        member = f"{now}:{token_hex(8)}"
        try:
            wait, seen = self._script(
                keys=[self.prefix + key], args=[now, int(self.window * 1000), self.limit, member, int(count)]
            )
        except Exception as exc:  # any Redis failure: fall back to this process's own count
            if not self._degraded:
                log.warning("rate limits counted per process while Redis does not answer: %s", exc)
            self._degraded = True
            return None
        if self._degraded:
            log.info("rate limits counted across replicas again (Redis answers)")
        self._degraded = False
        return int(wait), int(seen)

    def retry_after(self, key: str) -> int | None:
        shared = self._shared(key, count=False)
        if shared is None:
            return super().retry_after(key)
        return math.ceil(shared[0] / 1000) or None

    def hit(self, key: str) -> int | None:
        shared = self._shared(key, count=True)
        if shared is None:
            return super().hit(key)
        wait, seen = shared
        if not wait:
            return None
        try:
            first = self.client.set(f"{self.prefix}tripped:{key}", 1, nx=True, px=int(self.window * 1000))
        except Exception:
            first = False
        if first:
            self._on_trip(key, seen + 1)
        return math.ceil(wait / 1000)
