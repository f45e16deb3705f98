"""Webhook delivery rules, pure: signatures, retry backoff, subscription filters, delivery bodies.

Signature (what receivers check, see docs/timers.md):

    X-Rulesvc-Timestamp: <unix seconds of this attempt>
    X-Rulesvc-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>
    X-Rulesvc-Delivery:  <delivery_id>

The timestamp is signed so a captured request cannot be replayed later (receivers reject timestamps older
than a few minutes); the body of one delivery is byte-identical on every attempt and carries the stable
`delivery_id`, so receivers de-duplicate retries on it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rulesvc import exactjson

SIGNATURE_HEADER = "X-Rulesvc-Signature"
TIMESTAMP_HEADER = "X-Rulesvc-Timestamp"
DELIVERY_HEADER = "X-Rulesvc-Delivery"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 over `"<timestamp>." + body` with the subscription's secret."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes, delivery_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        DELIVERY_HEADER: delivery_id,
    }


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature_header: str,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: recompute the signature (constant-time compare) and bound the timestamp's age."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance:
        return False
    expected = signature(secret, sent, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in signature_header.split(","))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits base·2^(n-1), capped, times a random 50–100 %.

    After `max_attempts` failed attempts a delivery becomes a dead letter (listed and re-drivable over the
    API). Ordered per ticket: while one delivery of a ticket is pending or dead, later ones of that ticket
    for the same subscription wait.
    """

    max_attempts: int = 8
    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    timeout_seconds: float = 5.0

    def delay(self, failed_attempts: int, rand: Callable[[], float]) -> float:
        exponent = max(0, failed_attempts - 1)
        raw = min(self.cap_seconds, self.base_seconds * (2.0 ** min(exponent, 40)))
        return raw * (0.5 + 0.5 * rand())

    @property
    def lease_seconds(self) -> float:
        """How long a claimed delivery is reserved for its sender before another worker may retry it."""
        return self.timeout_seconds * 2 + 5


@dataclass(frozen=True)
class SubscriptionFilter:
    """Empty sets match everything."""

    kinds: frozenset[str] = frozenset()
    action_types: frozenset[str] = frozenset()

    @classmethod
    def of(cls, kinds: Iterable[str] = (), action_types: Iterable[str] = ()) -> SubscriptionFilter:
        return cls(frozenset(kinds), frozenset(action_types))

    def matches(self, kind: str | None, action: Mapping[str, Any]) -> bool:
        if self.kinds and (kind or "") not in self.kinds:
            return False
        return not self.action_types or str(action.get("type", "")) in self.action_types


def delivery_id(subscription_id: str, cursor: int) -> str:
    """Stable across retries, workers and restarts: one action to one subscription."""
    return f"{subscription_id}-{cursor}"


def delivery_body(
    delivery: str,
    subscription_id: str,
    cursor: int,
    at: datetime,
    ticket_id: str,
    kind: str | None,
    decision_id: str,
    action: Mapping[str, Any],
) -> str:
    """The JSON posted for one action: the feed record plus `delivery_id`, `subscription_id` and `kind`.

    `cursor` identifies the action itself (the same in the feed and in every subscription's deliveries):
    a receiver that must act at most once, e.g. on `trigger_payment`, keys on it.
    """
    return exactjson.dumps(
        {
            "delivery_id": delivery,
            "subscription_id": subscription_id,
            "cursor": cursor,
            "at": at.isoformat(),
            "ticket_id": ticket_id,
            "kind": kind,
            "decision_id": decision_id,
            "action": action,
        }
    )
