"""Wake-up notifications between the parts of one process and, with Redis, between replicas.

A notification carries no data, only "something changed on this topic" (`actions`: new actions in the
feed; `timers`: timers were started or moved; `keys`: a key was revoked or an owner lost rights — key caches
are dropped). Receivers must re-read the database, so a lost notification
costs latency, never correctness: the timer poller and the delivery worker also run on a fixed interval and
long-polls re-check the feed periodically.

`LocalNotifier` is the embedded default. `RedisNotifier` also publishes on Redis channels and relays what
other replicas publish into the local one. `shared_notifier(url)` returns one notifier per process and URL
so that the HTTP app and the background worker of `rulesvc serve` see each other's notifications.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("rulesvc.notify")

ACTIONS = "actions"
TIMERS = "timers"
KEYS = "keys"
CHANNEL_PREFIX = "rulesvc:"

Listener = Callable[[str], None]


class Notifier(Protocol):
    def publish(self, topic: str) -> None: ...

    def version(self, topic: str) -> int:
        """A counter that grows with every notification on `topic` seen by this process."""
        ...

    def wait(self, topic: str, seen: int, timeout: float) -> int:
        """Block until `version(topic)` exceeds `seen` or `timeout` seconds pass; returns the version."""
        ...

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(topic)` (on the publisher's or relay thread; keep it short) for every notification."""
        ...

    def close(self) -> None: ...


class LocalNotifier:
    """In-process notifications (threads of one process)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._versions: dict[str, int] = defaultdict(int)
        self._listeners: list[Listener] = []

    def publish(self, topic: str) -> None:
        self.deliver(topic)

    def deliver(self, topic: str) -> None:
        with self._cond:
            self._versions[topic] += 1
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(topic)
            except Exception:  # a listener must not break the publisher
                log.exception("notification listener failed")

    def version(self, topic: str) -> int:
        with self._cond:
            return self._versions[topic]

    def wait(self, topic: str, seen: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._versions[topic] > seen, timeout=max(0.0, timeout))
            return self._versions[topic]

    def subscribe(self, listener: Listener) -> None:
        with self._cond:
            self._listeners.append(listener)

    def close(self) -> None:
        pass


class RedisNotifier(LocalNotifier):
    """Publishes on Redis (`rulesvc:<topic>`) and relays every replica's notifications locally.

    `publish` never waits for Redis: it marks the topic and a publisher thread sends it (notifications of
    one topic raised while a send is pending coalesce into one). Redis being down degrades to local-only
    notifications (logged once per outage), never to errors.
    """

    def __init__(self, url: str, topics: tuple[str, ...] = (ACTIONS, TIMERS, KEYS)) -> None:
        super().__init__()
        import redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._topics = topics
        self._stop = threading.Event()
        self._down = False
        self._pending: set[str] = set()
        self._pending_cond = threading.Condition()
        self._relay_thread = threading.Thread(target=self._relay, name="rulesvc-redis-relay", daemon=True)
        self._publisher = threading.Thread(
            target=self._publish_loop, name="rulesvc-redis-publish", daemon=True
        )
        self._relay_thread.start()
        self._publisher.start()

    def publish(self, topic: str) -> None:
        with self._pending_cond:
            self._pending.add(topic)
            self._pending_cond.notify()

    def _publish_loop(self) -> None:
        while True:
            with self._pending_cond:
                self._pending_cond.wait_for(lambda: bool(self._pending) or self._stop.is_set())
                topics, self._pending = self._pending, set()
            for topic in sorted(topics):
                self._send(topic)
            if self._stop.is_set() and not self._pending:
                return

    def _send(self, topic: str) -> None:
        try:
            self._redis.publish(CHANNEL_PREFIX + topic, b"1")
            self._down = False
        except Exception as exc:  # redis.RedisError and socket errors
            if not self._down:
                log.warning("Redis publish failed, notifications stay local: %s", exc)
            self._down = True
            self.deliver(topic)

    def _relay(self) -> None:
        channels = [CHANNEL_PREFIX + topic for topic in self._topics]
        while not self._stop.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(*channels)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message and message.get("type") == "message":
                        channel = message["channel"]
                        name = channel.decode() if isinstance(channel, bytes) else str(channel)
                        self.deliver(name.removeprefix(CHANNEL_PREFIX))
            except Exception as exc:
                if not self._down:
                    log.warning("Redis subscription lost, retrying: %s", exc)
                self._down = True
                self._stop.wait(1.0)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()

    def close(self) -> None:
        """Send what is pending, then stop both threads."""
        self._stop.set()
        with self._pending_cond:
            self._pending_cond.notify_all()
        self._publisher.join(timeout=3)
        self._relay_thread.join(timeout=3)
        self._redis.close()


_shared: dict[str, Notifier] = {}
_shared_lock = threading.Lock()


def shared_notifier(redis_url: str | None) -> Notifier:
    """The process's notifier for this Redis URL (None: embedded, local only)."""
    key = redis_url or ""
    with _shared_lock:
        notifier = _shared.get(key)
        if notifier is None:
            notifier = RedisNotifier(redis_url) if redis_url else LocalNotifier()
            _shared[key] = notifier
        return notifier
