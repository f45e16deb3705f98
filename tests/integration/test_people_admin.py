"""People administration over HTTP and on the host, on SQLite and PostgreSQL: users and service accounts,
keys owned by them (never exceeding their roles), listing without secrets, revocation and disabling taking
effect at once, and every change in the audit chain naming who made it."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.integration.conftest import auth, engine_of, invoke_cli

ADMIN_ROUTES: list[tuple[str, str]] = [
    ("POST", "/v1/admin/users"),
    ("GET", "/v1/admin/users"),
    ("GET", "/v1/admin/users/u_000000000000"),
    ("PATCH", "/v1/admin/users/u_000000000000"),
    ("POST", "/v1/admin/users/u_000000000000/keys"),
    ("GET", "/v1/admin/keys"),
    ("DELETE", "/v1/admin/keys/000000000000"),
]


def create_user(client: TestClient, admin: str, **body: Any) -> Any:
    response = client.post("/v1/admin/users", json=body, headers=auth(admin))
    assert response.status_code == 201, response.text
    return response.json()


def create_key(client: TestClient, admin: str, user_id: str, **body: Any) -> Any:
    response = client.post(f"/v1/admin/users/{user_id}/keys", json=body or None, headers=auth(admin))
    assert response.status_code == 201, response.text
    return response.json()


def simulate(client: TestClient, key: str) -> int:
    """The status of a call editors may make (simulate)."""
    body = {"events": [], "until": "2026-10-01T00:00:00+08:00"}
    return client.post("/v1/simulate", json=body, headers=auth(key)).status_code


def chain_entries(app: FastAPI, kind: str) -> list[dict[str, Any]]:
    with engine_of(app).connect() as conn:
        rows = conn.execute(
            text("SELECT subject, payload FROM audit_log WHERE kind = :k ORDER BY seq"), {"k": kind}
        ).all()
    return [{"subject": subject, **json.loads(payload)} for subject, payload in rows]


def test_users_keys_and_their_chain_entries(client: TestClient, app: FastAPI, keys: dict[str, str]) -> None:
    admin = keys["admin"]
    zhang = create_user(client, admin, name="张敏", roles=["editor", "approver"])
    assert zhang["user_id"].startswith("u_") and zhang["username"] == "张敏"
    assert zhang["roles"] == ["approver", "editor"] and zhang["status"] == "enabled"
    assert zhang["created_at"].endswith("+08:00") and zhang["password"] is False

    # The sign-in name is unique (another 张敏 needs a username of her own).
    taken = client.post("/v1/admin/users", json={"name": "张敏", "roles": ["editor"]}, headers=auth(admin))
    assert taken.status_code == 409 and taken.json()["code"] == "people.username_taken"
    other = create_user(client, admin, name="张敏", username="zhangmin2", roles=["auditor"])
    assert other["username"] == "zhangmin2"

    # A key defaults to the person's roles and may not exceed them.
    key = create_key(client, admin, zhang["user_id"], label="张敏的笔记本")
    assert key["roles"] == ["approver", "editor"] and key["key"].startswith("rsk_")
    too_much = client.post(
        f"/v1/admin/users/{zhang['user_id']}/keys", json={"roles": ["admin"]}, headers=auth(admin)
    )
    assert too_much.status_code == 422 and too_much.json()["code"] == "people.roles_exceed_owner"
    assert too_much.json()["details"]["extra"] == ["admin"]
    editor_only = create_key(client, admin, zhang["user_id"], roles=["editor"])
    assert editor_only["roles"] == ["editor"]
    assert simulate(client, key["key"]) == 200

    # Listing shows owners and never a key or its hash.
    listed = client.get("/v1/admin/keys", headers=auth(admin)).json()["keys"]
    mine = {k["key_id"]: k for k in listed if k["user_id"] == zhang["user_id"]}
    assert set(mine) == {key["key_id"], editor_only["key_id"]}
    assert mine[key["key_id"]]["owner_name"] == "张敏" and mine[key["key_id"]]["status"] == "active"
    body = json.dumps(listed)
    assert key["key"] not in body and "key_hash" not in body
    users = client.get("/v1/admin/users", headers=auth(admin)).json()["users"]
    assert {u["user_id"] for u in users} >= {zhang["user_id"], other["user_id"]}
    assert all("password_hash" not in u for u in users)

    # Every change is a chain entry naming who made it; the chain still verifies.
    admin_actor = "admin ("  # keys made by the fixture are their own service accounts, named by label
    created = [e for e in chain_entries(app, "user") if e["subject"] == zhang["user_id"]]
    assert created[0]["change"] == "created" and created[0]["by"].startswith(admin_actor)
    assert created[0]["roles"] == ["approver", "editor"] and created[0]["name"] == "张敏"
    key_entries = [e for e in chain_entries(app, "key") if e["subject"] == key["key_id"]]
    assert key_entries[0]["change"] == "created" and key_entries[0]["user_id"] == zhang["user_id"]
    verify = client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()
    assert verify["ok"] is True, verify


def test_revoke_disable_and_role_removal_take_effect_at_once(
    client: TestClient, app: FastAPI, keys: dict[str, str]
) -> None:
    admin = keys["admin"]
    li = create_user(client, admin, name="李雷", roles=["editor", "auditor"])
    first = create_key(client, admin, li["user_id"])["key"]
    second = create_key(client, admin, li["user_id"])
    assert client.get("/v1/audit/verify", headers=auth(first)).status_code == 200  # cached now

    revoked = client.delete(f"/v1/admin/keys/{second['key_id']}", headers=auth(admin))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused = client.get("/v1/audit/verify", headers=auth(second["key"]))
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    assert client.delete("/v1/admin/keys/nosuchkey000", headers=auth(admin)).status_code == 404

    # Taking a role away from the person takes it from their keys.
    patched = client.patch(
        f"/v1/admin/users/{li['user_id']}", json={"roles": ["editor"]}, headers=auth(admin)
    )
    assert patched.status_code == 200 and patched.json()["roles"] == ["editor"]
    assert client.get("/v1/audit/verify", headers=auth(first)).status_code == 403
    assert simulate(client, first) == 200

    # A disabled person's keys stop working; enabled again, they work again.
    off = client.patch(f"/v1/admin/users/{li['user_id']}", json={"disabled": True}, headers=auth(admin))
    assert off.status_code == 200 and off.json()["status"] == "disabled"
    assert simulate(client, first) == 401
    no_key = client.post(f"/v1/admin/users/{li['user_id']}/keys", headers=auth(admin))
    assert no_key.status_code == 422
    client.patch(f"/v1/admin/users/{li['user_id']}", json={"disabled": False}, headers=auth(admin))
    assert simulate(client, first) == 200

    changes = [e for e in chain_entries(app, "user") if e["subject"] == li["user_id"]]
    assert [e["change"] for e in changes] == ["created", "updated", "updated", "updated"]
    assert changes[1]["changed"] == {"roles": {"from": ["auditor", "editor"], "to": ["editor"]}}
    assert changes[2]["changed"] == {"status": {"from": "enabled", "to": "disabled"}}
    revocation = [e for e in chain_entries(app, "key") if e["subject"] == second["key_id"]][-1]
    assert revocation["change"] == "revoked" and revocation["by"].startswith("admin (")


def test_refusals(client: TestClient, keys: dict[str, str]) -> None:
    admin = keys["admin"]
    cases = [
        ({"name": "王五", "roles": ["root"]}, "people.invalid"),
        ({"name": "王五", "roles": ["editor"], "password": "short"}, "people.password_weak"),
        ({"name": "王 五", "roles": ["editor"]}, "people.invalid"),  # a space: give a username
        ({"name": "王五", "roles": ["editor"], "extra": 1}, "invalid_request"),
    ]
    for body, code in cases:
        response = client.post("/v1/admin/users", json=body, headers=auth(admin))
        assert response.status_code == 422 and response.json()["code"] == code, response.text
        assert "short" not in response.text
    missing = client.patch("/v1/admin/users/u_000000000000", json={"disabled": True}, headers=auth(admin))
    assert missing.status_code == 404 and missing.json()["code"] == "people.not_found"
    assert "不存在" in missing.json()["message"]


def test_an_admin_cannot_lock_themself_out(client: TestClient, keys: dict[str, str]) -> None:
    boss = create_user(client, keys["admin"], name="王芳", roles=["admin"])
    own = create_key(client, keys["admin"], boss["user_id"])["key"]
    for body in ({"disabled": True}, {"roles": ["auditor"]}):
        response = client.patch(f"/v1/admin/users/{boss['user_id']}", json=body, headers=auth(own))
        assert response.status_code == 409 and response.json()["code"] == "people.self_lockout"


def test_service_accounts_have_owners(client: TestClient, keys: dict[str, str]) -> None:
    admin = keys["admin"]
    owner = create_user(client, admin, name="赵强", roles=["ingest"])
    tool = create_user(
        client, admin, name="信贷工单系统", roles=["ingest"], kind="service", owner_id=owner["user_id"]
    )
    assert tool["kind"] == "service" and tool["owner_id"] == owner["user_id"] and tool["username"] is None
    key = create_key(client, admin, tool["user_id"])
    assert key["roles"] == ["ingest"] and key["user_id"] == tool["user_id"]
    assert client.get("/v1/actions", headers=auth(key["key"])).status_code == 200


def test_admin_routes_need_the_admin_role(client: TestClient, keys: dict[str, str]) -> None:
    for method, path in ADMIN_ROUTES:
        assert client.request(method, path).status_code == 401
        for role in ("ingest", "editor", "approver", "compliance", "auditor"):
            response = client.request(method, path, headers=auth(keys[role]))
            assert response.status_code == 403, (method, path, role, response.text)
            assert response.json()["code"] == "forbidden"


def test_host_commands_make_people_and_their_keys(database_url: str) -> None:
    created = invoke_cli(
        ["users", "create", "--name", "张敏", "--role", "editor", "--role", "approver"], database_url
    )
    assert created.exit_code == 0, created.output
    lines = created.stdout.strip().splitlines()
    user_id = lines[0].removeprefix("user_id: ")
    password = lines[-1]
    assert user_id.startswith("u_") and len(password) == 16 and password not in created.stderr
    listed = invoke_cli(["users", "list"], database_url).stdout
    assert f"{user_id}\tuser\tenabled\tapprover,editor\t张敏\t张敏" in listed and password not in listed

    key = invoke_cli(["keys", "create", "--role", "editor", "--user", user_id], database_url)
    assert key.exit_code == 0, key.output
    assert key.stdout.strip().splitlines()[-1].startswith("rsk_")
    too_much = invoke_cli(["keys", "create", "--role", "admin", "--user", user_id], database_url)
    assert too_much.exit_code == 1 and "people.roles_exceed_owner" in too_much.output
    assert user_id in invoke_cli(["keys", "list"], database_url).stdout
    assert invoke_cli(["users", "disable", user_id], database_url).stdout.strip() == f"{user_id} disabled"
