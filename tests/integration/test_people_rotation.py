"""Key rotation with an overlap window, on SQLite and PostgreSQL: the new key works at once, the old one
until the window ends and not a moment after; both chain entries; a revoked or expired key cannot be
rotated; the window's end is sealed (extending it in the database by hand is refused); the host command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.sla.clock import VirtualClock
from tests.integration.conftest import auth, engine_of, invoke_cli, make_settings

START = datetime.fromisoformat("2026-12-07T09:00:00+08:00")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def app(database_url: str, book: Evaluator, clock: VirtualClock) -> FastAPI:
    return create_app(make_settings(database_url, key_cache_seconds=0.001), book=book, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def admin_key(app: FastAPI) -> str:
    return create_api_key(app.state.runtime.service.keys, frozenset({Role.ADMIN}), VirtualClock(START), "it")[
        1
    ]


def person_key(client: TestClient, admin_key: str) -> dict[str, Any]:
    user = client.post(
        "/v1/admin/users", json={"name": "孙丽", "roles": ["auditor"]}, headers=auth(admin_key)
    )
    assert user.status_code == 201, user.text
    made = client.post(
        f"/v1/admin/users/{user.json()['user_id']}/keys", json={"label": "审计脚本"}, headers=auth(admin_key)
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def works(client: TestClient, key: str) -> bool:
    status = client.get("/v1/audit/verify", headers=auth(key)).status_code
    assert status in (200, 401)
    return status == 200


def test_the_old_key_works_until_the_overlap_ends(
    app: FastAPI, client: TestClient, admin_key: str, clock: VirtualClock
) -> None:
    old = person_key(client, admin_key)
    answer = client.post(
        f"/v1/admin/keys/{old['key_id']}/rotate", json={"overlap_seconds": 3600}, headers=auth(admin_key)
    )
    assert answer.status_code == 201, answer.text
    new = answer.json()
    assert new["key_id"] != old["key_id"] and new["key"] != old["key"]
    assert new["roles"] == ["auditor"] and new["user_id"] == old["user_id"]
    assert new["replaces"]["key_id"] == old["key_id"] and new["replaces"]["status"] == "expiring"
    assert new["replaces"]["expires_at"] == (START + timedelta(hours=1)).isoformat()
    assert new["replaces"]["replaced_by"] == new["key_id"]
    assert works(client, new["key"]) and works(client, old["key"])
    clock.advance(timedelta(minutes=59, seconds=59))
    assert works(client, old["key"])
    clock.advance(timedelta(seconds=1))
    assert not works(client, old["key"]) and works(client, new["key"])
    listed = {k["key_id"]: k for k in client.get("/v1/admin/keys", headers=auth(admin_key)).json()["keys"]}
    assert listed[old["key_id"]]["status"] == "expired" and listed[new["key_id"]]["status"] == "active"
    assert listed[new["key_id"]]["label"] == "审计脚本"
    # an expired key cannot be rotated again
    again = client.post(f"/v1/admin/keys/{old['key_id']}/rotate", headers=auth(admin_key))
    assert again.status_code == 409 and again.json()["code"] == "people.key_inactive"
    with engine_of(app).connect() as conn:
        rows = conn.execute(
            text("SELECT subject, payload FROM audit_log WHERE kind = 'key' ORDER BY seq")
        ).all()
    entries = [(s, json.loads(p)) for s, p in rows]
    created = [p for s, p in entries if s == new["key_id"]]
    rotated = [p for s, p in entries if s == old["key_id"] and p["change"] == "rotated"]
    assert created[0]["change"] == "created" and created[0]["rotated_from"] == old["key_id"]
    assert rotated[0]["replaced_by"] == new["key_id"] and rotated[0]["expires_at"]
    assert rotated[0]["by"] == created[0]["by"] and "(" in rotated[0]["by"]


def test_overlap_zero_stops_the_old_key_now_and_revoked_keys_are_refused(
    client: TestClient, admin_key: str
) -> None:
    old = person_key(client, admin_key)
    answer = client.post(
        f"/v1/admin/keys/{old['key_id']}/rotate", json={"overlap_seconds": 0}, headers=auth(admin_key)
    )
    assert answer.status_code == 201
    assert not works(client, old["key"]) and works(client, answer.json()["key"])
    new_id = answer.json()["key_id"]
    assert client.delete(f"/v1/admin/keys/{new_id}", headers=auth(admin_key)).status_code == 200
    refused = client.post(f"/v1/admin/keys/{new_id}/rotate", headers=auth(admin_key))
    assert refused.status_code == 409 and refused.json()["code"] == "people.key_inactive"
    assert refused.json()["message"]
    missing = client.post("/v1/admin/keys/000000000000/rotate", headers=auth(admin_key))
    assert missing.status_code == 404
    too_long = client.post(
        f"/v1/admin/keys/{new_id}/rotate", json={"overlap_seconds": 31 * 86400}, headers=auth(admin_key)
    )
    assert too_long.status_code == 422


def test_extending_the_window_by_hand_is_refused(
    app: FastAPI, client: TestClient, admin_key: str, clock: VirtualClock
) -> None:
    old = person_key(client, admin_key)
    client.post(
        f"/v1/admin/keys/{old['key_id']}/rotate", json={"overlap_seconds": 60}, headers=auth(admin_key)
    )
    with engine_of(app).begin() as conn:
        conn.execute(
            text("UPDATE api_keys SET expires_at = :t WHERE key_id = :k"),
            {"t": START + timedelta(days=365), "k": old["key_id"]},
        )
    clock.advance(timedelta(minutes=5))
    answer = client.get("/v1/audit/verify", headers=auth(old["key"]))
    assert answer.status_code == 401 and answer.json()["code"] == "auth.key_mismatch"


def test_rotate_on_the_host(database_url: str, client: TestClient, admin_key: str) -> None:
    old = person_key(client, admin_key)
    result = invoke_cli(["keys", "rotate", old["key_id"], "--overlap-hours", "2"], database_url)
    assert result.exit_code == 0, result.output
    new_key = result.stdout.strip().splitlines()[-1]
    # the host command runs on real time, this app on a virtual clock: the overlap is tested above
    assert new_key.startswith("rsk_") and works(client, new_key)
    listed = invoke_cli(["keys", "list"], database_url).stdout
    assert f"{old['key_id']}\tauditor" in listed and "until" in listed
    bad = invoke_cli(["keys", "rotate", "000000000000"], database_url)
    assert bad.exit_code != 0
