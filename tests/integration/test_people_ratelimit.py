"""Rate limits per client address, on SQLite and PostgreSQL: sign-in attempts past the limit are 429
`auth.rate_limited` (even with the right password) with Retry-After; invalid API keys past the limit are 429
`auth.too_many_invalid_keys` for keys not already known good; the first refusal is a `signin` chain entry."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.people.ratelimit import SharedRateLimiter
from rulesvc.sla.clock import SystemClock
from tests.integration.conftest import REDIS_URL, auth, engine_of, free_port, make_settings, unavailable

PASSWORD = "长城-Great-Wall-2026"
BOGUS = "rsk_000000000000_" + "x" * 43


@pytest.fixture
def app(database_url: str, book: Evaluator) -> FastAPI:
    settings = make_settings(
        database_url, signin_rate_per_minute=3, invalid_key_rate_per_minute=3, key_cache_seconds=60
    )
    return create_app(settings, book=book)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def signin_entries(app: FastAPI) -> list[dict[str, object]]:
    with engine_of(app).connect() as conn:
        rows = conn.execute(text("SELECT payload FROM audit_log WHERE kind = 'signin' ORDER BY seq")).all()
    return [json.loads(payload) for (payload,) in rows]


def test_sign_in_attempts_are_limited_per_address(app: FastAPI, client: TestClient) -> None:
    admin = create_api_key(app.state.runtime.service.keys, frozenset({Role.ADMIN}), SystemClock(), "it")[1]
    body = {"name": "周敏", "roles": ["editor"], "password": PASSWORD}
    assert client.post("/v1/admin/users", json=body, headers=auth(admin)).status_code == 201
    for _ in range(3):
        answer = client.post("/v1/auth/login", json={"username": "周敏", "password": "wrong-password-1"})
        assert answer.status_code == 401
    limited = client.post("/v1/auth/login", json={"username": "周敏", "password": PASSWORD})
    assert limited.status_code == 429
    error = limited.json()
    assert error["code"] == "auth.rate_limited" and "秒后再试" in error["message"]
    assert int(limited.headers["Retry-After"]) == error["details"]["retry_after"] > 0
    entries = [e for e in signin_entries(app) if e["change"] == "rate_limited"]
    assert len(entries) == 1 and entries[0]["limit"] == "signin" and entries[0]["attempts"] == 4
    # another refusal in the same minute is not a second entry
    assert client.post("/v1/auth/login", json={"username": "x", "password": "y"}).status_code == 429
    assert len([e for e in signin_entries(app) if e["change"] == "rate_limited"]) == 1


def test_invalid_keys_are_limited_per_address_known_keys_still_work(app: FastAPI, client: TestClient) -> None:
    good = create_api_key(app.state.runtime.service.keys, frozenset({Role.AUDITOR}), SystemClock(), "a")[1]
    fresh = create_api_key(app.state.runtime.service.keys, frozenset({Role.AUDITOR}), SystemClock(), "b")[1]
    assert client.get("/v1/audit/verify", headers=auth(good)).status_code == 200
    for _ in range(3):
        answer = client.get("/v1/audit/verify", headers=auth(BOGUS))
        assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    limited = client.get("/v1/audit/verify", headers=auth(BOGUS))
    assert limited.status_code == 429 and limited.json()["code"] == "auth.too_many_invalid_keys"
    assert limited.json()["message"] and "Retry-After" in limited.headers
    # a key this replica already knows to be good goes on working; an unknown one waits like the rest
    assert client.get("/v1/audit/verify", headers=auth(good)).status_code == 200
    assert client.get("/v1/audit/verify", headers=auth(fresh)).status_code == 429
    entries = [e for e in signin_entries(app) if e["change"] == "rate_limited"]
    assert [e["limit"] for e in entries] == ["invalid_keys"]


def test_with_redis_the_limit_is_counted_across_replicas(sqlite_url: str, book: Evaluator) -> None:
    """Two replicas (one database, one Redis): attempts on either count toward one limit, the refusal is one
    chain entry whichever replica refuses."""
    import redis

    shared = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        shared.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)
    for key in shared.scan_iter("rulesvc:ratelimit:*"):
        shared.delete(key)
    # no request deadline: two replicas in one process on a loaded machine are slow, and it is not the subject
    settings = make_settings(sqlite_url, signin_rate_per_minute=3, redis_url=REDIS_URL, request_timeout=0)
    one, two = create_app(settings, book=book), create_app(settings, book=book)
    with TestClient(one) as first, TestClient(two) as second:
        admin = create_api_key(one.state.runtime.service.keys, frozenset({Role.ADMIN}), SystemClock(), "it")[
            1
        ]
        body = {"name": "钱敏", "roles": ["editor"], "password": PASSWORD}
        assert first.post("/v1/admin/users", json=body, headers=auth(admin)).status_code == 201
        wrong = {"username": "钱敏", "password": "wrong-password-1"}
        for replica in (first, second, first):
            assert replica.post("/v1/auth/login", json=wrong).status_code == 401
        limited = second.post("/v1/auth/login", json={"username": "钱敏", "password": PASSWORD})
        assert limited.status_code == 429 and limited.json()["code"] == "auth.rate_limited"
        assert 0 < int(limited.headers["Retry-After"]) <= 60
        assert (
            first.post("/v1/auth/login", json={"username": "钱敏", "password": PASSWORD}).status_code == 429
        )
        entries = [e for e in signin_entries(one) if e["change"] == "rate_limited"]
        assert len(entries) == 1 and entries[0]["attempts"] == 4
    for key in shared.scan_iter("rulesvc:ratelimit:*"):
        shared.delete(key)
    shared.close()


def test_without_an_answer_from_redis_each_process_limits_what_it_sees() -> None:
    import redis

    silent = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    tripped: list[tuple[str, int]] = []
    limiter = SharedRateLimiter(
        silent, "rulesvc:ratelimit:test:", 2, 60.0, lambda k, n: tripped.append((k, n))
    )
    assert limiter.hit("10.0.0.1") is None and limiter.hit("10.0.0.1") is None
    assert limiter.retry_after("10.0.0.1") is not None
    assert limiter.hit("10.0.0.1") is not None and tripped == [("10.0.0.1", 3)]
    assert limiter.hit("10.0.0.2") is None
