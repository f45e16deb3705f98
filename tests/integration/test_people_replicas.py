"""Revocation across replicas: two apps on one database; a key revoked (or its owner disabled) on one is
refused by the other within a second — through Redis at once even when the other would cache keys for a
minute, and without Redis by its one-second cache."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import create_api_key
from rulesvc.sla.clock import SystemClock
from tests.integration.conftest import REDIS_URL, auth, make_settings, unavailable

BUDGET = 1.0


def _redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)


@pytest.fixture
def replicas(
    database_url: str, book: Any, request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, TestClient]]:
    with_redis = request.param
    if with_redis:
        _redis()
    options = {"redis_url": REDIS_URL} if with_redis else {}
    with ExitStack() as stack:
        first = stack.enter_context(TestClient(create_app(make_settings(database_url, **options), book=book)))
        second_settings = make_settings(
            database_url, key_cache_seconds=60.0 if with_redis else 1.0, **options
        )
        second = stack.enter_context(TestClient(create_app(second_settings, book=book)))
        yield first, second


def refused_within(client: TestClient, key: str, budget: float) -> float | None:
    """Seconds until `key` is refused (401) by `client`, or None when still accepted after `budget`."""
    start = time.monotonic()
    while True:
        status = client.get("/v1/audit/verify", headers=auth(key)).status_code
        elapsed = time.monotonic() - start
        if status == 401:
            return elapsed
        assert status == 200
        if elapsed > budget:
            return None
        time.sleep(0.02)


@pytest.mark.parametrize("replicas", [True, False], ids=["redis", "no-redis"], indirect=True)
def test_revocation_reaches_the_other_replica_within_a_second(
    replicas: tuple[TestClient, TestClient],
) -> None:
    first, second = replicas
    store = first.app.state.runtime.service.keys  # type: ignore[attr-defined]
    admin = create_api_key(store, frozenset({Role.ADMIN}), SystemClock(), "admin")[1]
    person = first.post("/v1/admin/users", json={"name": "孙丽", "roles": ["auditor"]}, headers=auth(admin))
    user_id = person.json()["user_id"]
    made = [first.post(f"/v1/admin/users/{user_id}/keys", headers=auth(admin)).json() for _ in range(2)]
    for key in made:
        assert second.get("/v1/audit/verify", headers=auth(key["key"])).status_code == 200  # cached there

    assert first.delete(f"/v1/admin/keys/{made[0]['key_id']}", headers=auth(admin)).status_code == 200
    took = refused_within(second, made[0]["key"], BUDGET)
    assert took is not None, "the revoked key was still accepted by the other replica after 1 s"

    off = first.patch(f"/v1/admin/users/{user_id}", json={"disabled": True}, headers=auth(admin))
    assert off.status_code == 200
    took = refused_within(second, made[1]["key"], BUDGET)
    assert took is not None, "the disabled person's key was still accepted by the other replica after 1 s"
