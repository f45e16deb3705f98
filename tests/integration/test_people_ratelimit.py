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
from rulesvc.sla.clock import SystemClock
from tests.integration.conftest import auth, engine_of, make_settings

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
