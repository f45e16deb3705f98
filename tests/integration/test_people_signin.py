"""Local sign-in on SQLite and PostgreSQL: argon2id passwords, the session cookie (HttpOnly, SameSite),
CSRF on state-changing requests, lockout after repeated failures (a chain entry), TOTP, idle and absolute
timeouts, sign-out, a disabled person's session ending at once, and the first admin of an empty
PostgreSQL database made on the host and signing in."""

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
from rulesvc.people.totp import code_at
from rulesvc.sla.clock import VirtualClock
from tests.integration.conftest import auth, engine_of, invoke_cli, make_settings
from tests.integration.test_migration_occurred_at import empty_database

__all__ = ["empty_database"]

START = datetime.fromisoformat("2026-12-07T09:00:00+08:00")
PASSWORD = "长城-Great-Wall-2026"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def signin_app(database_url: str, book: Evaluator, clock: VirtualClock) -> FastAPI:
    return create_app(make_settings(database_url, login_max_failures=3), book=book, clock=clock)


@pytest.fixture
def client(signin_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(signin_app) as client:
        yield client


@pytest.fixture
def admin_key(signin_app: FastAPI) -> str:
    store = signin_app.state.runtime.service.keys
    return create_api_key(store, frozenset({Role.ADMIN}), VirtualClock(START), "it")[1]


def make_user(
    client: TestClient, admin_key: str, name: str, roles: list[str], password: str = PASSWORD
) -> str:
    body = {"name": name, "roles": roles, "password": password}
    response = client.post("/v1/admin/users", json=body, headers=auth(admin_key))
    assert response.status_code == 201, response.text
    assert password not in response.text and response.json()["password"] is True
    return str(response.json()["user_id"])


def login(client: TestClient, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post("/v1/auth/login", json={"username": username, "password": password, **extra})


def test_sign_in_session_cookie_and_csrf(client: TestClient, admin_key: str) -> None:
    user_id = make_user(client, admin_key, "王芳", ["admin"])
    signed_in = login(client, "王芳")
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["user_id"] == user_id and body["roles"] == ["admin"] and PASSWORD not in signed_in.text
    cookies = signed_in.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("rulesvc_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie and "Path=/" in session_cookie
    csrf_cookie = next(c for c in cookies if c.startswith("rulesvc_csrf="))
    assert "HttpOnly" not in csrf_cookie and body["csrf_token"] in csrf_cookie

    me = client.get("/v1/auth/me")
    assert me.status_code == 200 and me.json()["via"] == "session" and me.json()["user_id"] == user_id
    assert client.get("/v1/admin/users").status_code == 200  # reads need no CSRF token

    new_user = {"name": "张敏", "roles": ["editor"]}
    refused = client.post("/v1/admin/users", json=new_user)
    assert refused.status_code == 403 and refused.json()["code"] == "auth.csrf", refused.text
    forged = client.post("/v1/admin/users", json=new_user, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403 and forged.json()["code"] == "auth.csrf"
    made = client.post("/v1/admin/users", json=new_user, headers={"X-CSRF-Token": body["csrf_token"]})
    assert made.status_code == 201, made.text

    # Made with a session, the change names the person in the chain.
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        payload = conn.execute(
            text("SELECT payload FROM audit_log WHERE kind = 'user' AND subject = :s"),
            {"s": made.json()["user_id"]},
        ).scalar_one()
    assert json.loads(payload)["by"] == f"王芳 ({user_id})"

    out = client.post("/v1/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert out.status_code == 200
    assert client.get("/v1/auth/me").status_code == 401


def test_wrong_passwords_lock_the_account(client: TestClient, admin_key: str, clock: VirtualClock) -> None:
    user_id = make_user(client, admin_key, "李雷", ["auditor"])
    unknown = login(client, "nobody")
    assert unknown.status_code == 401 and unknown.json()["code"] == "auth.invalid_credentials"
    for _ in range(2):
        wrong = login(client, "李雷", "wrong-password!")
        assert wrong.status_code == 401 and wrong.json()["code"] == "auth.invalid_credentials"
        assert wrong.json()["message"] == "用户名或密码错误"
    locked = login(client, "李雷", "wrong-password!")
    assert locked.status_code == 423 and locked.json()["code"] == "auth.locked", locked.text
    assert "锁定" in locked.json()["message"]
    still = login(client, "李雷")  # the right password does not open a locked account
    assert still.status_code == 423
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        rows = conn.execute(
            text("SELECT payload FROM audit_log WHERE kind = 'user' AND subject = :s ORDER BY seq"),
            {"s": user_id},
        ).all()
    entry = json.loads(rows[-1][0])
    assert entry["change"] == "locked" and entry["failures"] == 3 and "wrong-password" not in rows[-1][0]
    clock.advance(timedelta(minutes=16))
    assert login(client, "李雷").status_code == 200


def test_totp_second_factor(client: TestClient, admin_key: str, clock: VirtualClock) -> None:
    make_user(client, admin_key, "赵强", ["editor"])
    csrf = login(client, "赵强").json()["csrf_token"]
    setup = client.post("/v1/auth/totp/setup", headers={"X-CSRF-Token": csrf})
    assert setup.status_code == 200 and setup.json()["uri"].startswith("otpauth://totp/")
    secret = setup.json()["secret"]
    bad = client.post("/v1/auth/totp/enable", json={"totp": "000000"}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 422
    enabled = client.post(
        "/v1/auth/totp/enable", json={"totp": code_at(secret, clock.now())}, headers={"X-CSRF-Token": csrf}
    )
    assert enabled.status_code == 200, enabled.text
    client.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf})

    needed = login(client, "赵强")
    assert needed.status_code == 401 and needed.json()["code"] == "auth.totp_required"
    wrong = login(client, "赵强", totp="123456" if code_at(secret, clock.now()) != "123456" else "654321")
    assert wrong.status_code == 401 and wrong.json()["code"] == "auth.invalid_credentials"
    assert login(client, "赵强", totp=code_at(secret, clock.now())).status_code == 200


def test_sessions_end_when_idle_at_the_absolute_limit_and_when_disabled(
    client: TestClient, admin_key: str, clock: VirtualClock
) -> None:
    user_id = make_user(client, admin_key, "孙丽", ["auditor"])
    assert login(client, "孙丽").status_code == 200
    clock.advance(timedelta(minutes=29))
    assert client.get("/v1/auth/me").status_code == 200  # used: the idle clock starts again
    clock.advance(timedelta(minutes=29))
    assert client.get("/v1/auth/me").status_code == 200
    clock.advance(timedelta(minutes=31))
    idle = client.get("/v1/auth/me")
    assert idle.status_code == 401 and idle.json()["code"] == "auth.session_expired"

    assert login(client, "孙丽").status_code == 200
    for _ in range(12 * 3 - 1):  # busy all day: every 20 minutes
        clock.advance(timedelta(minutes=20))
        assert client.get("/v1/auth/me").status_code == 200
    clock.advance(timedelta(minutes=20))
    assert client.get("/v1/auth/me").status_code == 401  # 12 hours after sign-in

    assert login(client, "孙丽").status_code == 200
    off = client.patch(f"/v1/admin/users/{user_id}", json={"disabled": True}, headers=auth(admin_key))
    assert off.status_code == 200
    assert client.get("/v1/auth/me").status_code == 401
    refused = login(client, "孙丽")
    assert refused.status_code == 403 and refused.json()["code"] == "auth.disabled"


def test_service_accounts_and_keys_cannot_sign_in(client: TestClient, admin_key: str) -> None:
    assert login(client, "it", "whatever-password").status_code == 401
    me = client.get("/v1/auth/me", headers=auth(admin_key))
    assert me.status_code == 200 and me.json()["via"] == "key" and me.json()["roles"] == ["admin"]


def test_first_admin_of_an_empty_postgresql_database(empty_database: str, book: Evaluator) -> None:
    if not empty_database.startswith("postgresql"):
        pytest.skip("the bootstrap from nothing is the PostgreSQL path (SQLite shows a key at first start)")
    created = invoke_cli(["users", "create", "--name", "王芳", "--role", "admin"], empty_database)
    assert created.exit_code == 0, created.output
    password = created.stdout.strip().splitlines()[-1]
    app = create_app(make_settings(empty_database), book=book)
    with TestClient(app) as client:
        signed_in = login(client, "王芳", password)
        assert signed_in.status_code == 200, signed_in.text
        csrf = signed_in.json()["csrf_token"]
        made = client.post(
            "/v1/admin/users", json={"name": "张敏", "roles": ["editor"]}, headers={"X-CSRF-Token": csrf}
        )
        assert made.status_code == 201, made.text
        changed = client.post(
            "/v1/auth/password",
            json={"current": password, "new": "新的密码-New-Password"},
            headers={"X-CSRF-Token": csrf},
        )
        assert changed.status_code == 200
        assert login(client, "王芳", password).status_code == 401
        assert login(client, "王芳", "新的密码-New-Password").status_code == 200
