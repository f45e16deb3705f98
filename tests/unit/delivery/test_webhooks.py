"""Webhook signatures, retry backoff, filters and bodies (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from rulesvc.delivery.webhooks import (
    RetryPolicy,
    SubscriptionFilter,
    delivery_body,
    delivery_id,
    signature,
    signed_headers,
    verify_signature,
)

SECRET = "whsec_test-secret-0123456789"


def test_signature_covers_timestamp_and_body() -> None:
    body = b'{"a":1}'
    headers = signed_headers(SECRET, 1_800_000_000, body, "wh_1-7")
    sig = headers["X-Rulesvc-Signature"]
    assert sig.startswith("v1=") and headers["X-Rulesvc-Delivery"] == "wh_1-7"
    assert verify_signature(SECRET, "1800000000", body, sig, now=1_800_000_010)
    assert not verify_signature(SECRET, "1800000001", body, sig, now=1_800_000_010)  # timestamp changed
    assert not verify_signature(SECRET, "1800000000", b'{"a":2}', sig, now=1_800_000_010)  # body changed
    assert not verify_signature("other-secret-xxxxxxxx", "1800000000", body, sig, now=1_800_000_010)
    assert not verify_signature(SECRET, "1800000000", body, sig, now=1_800_001_000)  # too old: replay
    assert not verify_signature(SECRET, "soon", body, sig, now=1_800_000_000)


def test_signature_is_hmac_sha256_hex_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"42.xyz", hashlib.sha256).hexdigest()
    assert signature(SECRET, 42, b"xyz") == f"v1={expected}"


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=2.0, cap_seconds=60.0)
    assert policy.delay(1, lambda: 1.0) == 2.0
    assert policy.delay(1, lambda: 0.0) == 1.0
    assert policy.delay(3, lambda: 1.0) == 8.0
    assert policy.delay(30, lambda: 1.0) == 60.0
    assert 30.0 <= policy.delay(30, lambda: 0.5) <= 60.0


def test_filters_match_kind_and_action_type() -> None:
    anything = SubscriptionFilter.of()
    only = SubscriptionFilter.of(["complaint"], ["notify", "escalate"])
    assert anything.matches(None, {"type": "assign"})
    assert only.matches("complaint", {"type": "notify"})
    assert not only.matches("loan", {"type": "notify"})
    assert not only.matches("complaint", {"type": "start_timer"})
    assert not only.matches(None, {"type": "notify"})


def test_body_is_stable_and_carries_the_ids() -> None:
    at = datetime(2026, 11, 2, 2, 30, tzinfo=UTC)
    args = ("wh_1-7", "wh_1", 7, at, "C-1", "complaint", "d-1", {"type": "notify", "to": "owner"})
    assert delivery_body(*args) == delivery_body(*args)
    body = orjson.loads(delivery_body(*args))
    assert body["delivery_id"] == delivery_id("wh_1", 7) == "wh_1-7"
    assert (body["cursor"], body["ticket_id"], body["kind"]) == (7, "C-1", "complaint")
