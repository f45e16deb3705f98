"""What keys grant and what people hold is sealed into the chain, on SQLite and PostgreSQL: a database writer
who widens a key's roles, moves a key to another owner, revives a revoked key, re-enables a disabled
person, gives a person a role, swaps a password hash or inserts a key of their own is refused when the key
or session is used (401 `auth.key_mismatch` / `auth.grant_mismatch`, an `integrity:` alert, a metric) and
reported by `verify` with the row. Each edit is plain SQL, as the attacker would write it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from rulesvc.apikeys import Role, hash_key
from rulesvc.decisions.service import create_api_key
from rulesvc.people.access import key_principal
from rulesvc.people.errors import GrantMismatchError
from rulesvc.people.signin import session_hash
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import SqlStore, make_engine
from rulesvc.wiring.database import table_checks
from tests.integration.conftest import auth, engine_of, event
from tests.integration.test_migration_occurred_at import empty_database, upgrade

__all__ = ["empty_database"]

PASSWORD = "长城-Great-Wall-2026"


def sql(app: FastAPI, statement: str, **params: Any) -> None:
    with engine_of(app).begin() as conn:
        conn.execute(text(statement), params)


def scalar(app: FastAPI, statement: str, **params: Any) -> Any:
    with engine_of(app).connect() as conn:
        return conn.execute(text(statement), params).scalar()


def key_id(key: str) -> str:
    return key.split("_")[1]


def verify(client: TestClient, keys: dict[str, str]) -> dict[str, Any]:
    response = client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def problems(result: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(p["table"], p["row"], p["reason"]) for p in result.get("problems", [])}


def refusals(client: TestClient, table: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("rulesvc_integrity_refusals_total{") and f'table="{table}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def make_user(client: TestClient, admin: str, name: str, roles: list[str], **extra: Any) -> str:
    response = client.post(
        "/v1/admin/users", json={"name": name, "roles": roles, **extra}, headers=auth(admin)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["user_id"])


def simulate(client: TestClient, key: str) -> Any:
    """A call editors may make."""
    body = {"events": [], "until": "2026-10-01T00:00:00+08:00"}
    return client.post("/v1/simulate", json=body, headers=auth(key))


def make_key(client: TestClient, admin: str, user_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/admin/users/{user_id}/keys", headers=auth(admin))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def decided(client: TestClient, keys: dict[str, str]) -> str:
    response = client.post("/v1/events", json=event("g1"), headers=auth(keys["ingest"]))
    assert response.status_code == 200, response.text
    client.app.state.runtime.service.forget_keys()  # type: ignore[attr-defined]
    return str(response.json()["decision_id"])


def test_untouched_keys_and_people_verify(client: TestClient, keys: dict[str, str], decided: str) -> None:
    user_id = make_user(client, keys["admin"], "张敏", ["editor", "approver"], password=PASSWORD)
    key = make_key(client, keys["admin"], user_id)
    assert client.patch(
        f"/v1/admin/users/{user_id}", json={"roles": ["editor"]}, headers=auth(keys["admin"])
    ).is_success
    assert client.delete(f"/v1/admin/keys/{key['key_id']}", headers=auth(keys["admin"])).is_success
    login = client.post("/v1/auth/login", json={"username": "张敏", "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert client.get("/v1/auth/me").status_code == 200
    assert verify(client, keys) == {"ok": True, "checked": verify(client, keys)["checked"]}


def test_widened_key_roles_are_refused_and_reported(
    client: TestClient, app: FastAPI, keys: dict[str, str], decided: str, caplog: pytest.LogCaptureFixture
) -> None:
    ingest = key_id(keys["ingest"])
    before = refusals(client, "api_keys")
    sql(app, "UPDATE api_keys SET roles = 'ingest,compliance' WHERE key_id = :k", k=ingest)
    sql(app, "UPDATE principals SET roles = 'ingest,compliance' WHERE principal_id = :p", p=f"s_{ingest}")
    with caplog.at_level(logging.ERROR, logger="rulesvc.evidence"):
        read = client.get(f"/v1/decisions/{decided}", headers=auth(keys["ingest"]))
    assert read.status_code == 401, read.text
    assert read.json()["code"] == "auth.key_mismatch"
    assert read.json()["details"] == {"table": "api_keys", "row": ingest, "reason": "grant_mismatch"}
    assert "4999.99" not in read.text and "赵敏" not in read.text
    assert any("integrity: api_keys row" in r.getMessage() for r in caplog.records)
    assert client.post("/v1/events", json=event("g2"), headers=auth(keys["ingest"])).status_code == 401
    assert refusals(client, "api_keys") >= before + 2
    found = problems(verify(client, keys))
    assert ("api_keys", ingest, "grant_mismatch") in found
    assert ("principals", f"s_{ingest}", "grant_mismatch") in found
    assert verify(client, keys)["ok"] is False
    # Other keys keep working.
    assert client.get(f"/v1/decisions/{decided}", headers=auth(keys["compliance"])).status_code == 200


def test_owner_roles_widened_with_the_key_are_refused(
    client: TestClient, app: FastAPI, keys: dict[str, str]
) -> None:
    user_id = make_user(client, keys["admin"], "王五", ["editor"])
    key = make_key(client, keys["admin"], user_id)
    assert simulate(client, key["key"]).status_code == 200
    client.app.state.runtime.service.forget_keys()  # type: ignore[attr-defined]
    sql(app, "UPDATE principals SET roles = 'admin,editor' WHERE principal_id = :p", p=user_id)
    sql(app, "UPDATE api_keys SET roles = 'admin,editor' WHERE key_id = :k", k=key["key_id"])
    refused = client.get("/v1/admin/users", headers=auth(key["key"]))
    assert refused.status_code == 401 and refused.json()["code"] == "auth.key_mismatch"
    found = problems(verify(client, keys))
    assert {("principals", user_id, "grant_mismatch"), ("api_keys", key["key_id"], "grant_mismatch")} <= found
    # An administrator's change would seal the edit as genuine: refused too.
    change = client.patch(f"/v1/admin/users/{user_id}", json={"disabled": True}, headers=auth(keys["admin"]))
    assert change.status_code == 409 and change.json()["code"] == "people.grant_mismatch"


def test_key_moved_to_another_owner_is_refused(
    client: TestClient, app: FastAPI, keys: dict[str, str]
) -> None:
    boss = make_user(client, keys["admin"], "老板", ["admin", "compliance"])
    ingest = key_id(keys["ingest"])
    sql(
        app,
        "UPDATE api_keys SET principal_id = :p, roles = 'admin,compliance' WHERE key_id = :k",
        p=boss,
        k=ingest,
    )
    refused = client.get("/v1/admin/users", headers=auth(keys["ingest"]))
    assert refused.status_code == 401 and refused.json()["code"] == "auth.key_mismatch"
    assert ("api_keys", ingest, "grant_mismatch") in problems(verify(client, keys))


def test_revoked_key_revived_is_refused(client: TestClient, app: FastAPI, keys: dict[str, str]) -> None:
    editor = key_id(keys["editor"])
    created = scalar(app, "SELECT seal_seq FROM api_keys WHERE key_id = :k", k=editor)
    assert client.delete(f"/v1/admin/keys/{editor}", headers=auth(keys["admin"])).is_success
    assert simulate(client, keys["editor"]).status_code == 401
    # Put back the key as it was, pointing at its `created` entry (which still verifies).
    sql(app, "UPDATE api_keys SET revoked_at = NULL, seal_seq = :s WHERE key_id = :k", s=created, k=editor)
    client.app.state.runtime.service.forget_keys()  # type: ignore[attr-defined]
    refused = simulate(client, keys["editor"])
    assert refused.status_code == 401 and refused.json()["code"] == "auth.key_mismatch"
    assert refused.json()["details"]["reason"] == "seal_stale"
    assert ("api_keys", editor, "seal_stale") in problems(verify(client, keys))


def test_disabled_person_re_enabled_is_refused(
    client: TestClient, app: FastAPI, keys: dict[str, str]
) -> None:
    user_id = make_user(client, keys["admin"], "李四", ["editor"])
    key = make_key(client, keys["admin"], user_id)
    assert client.patch(
        f"/v1/admin/users/{user_id}", json={"disabled": True}, headers=auth(keys["admin"])
    ).is_success
    sql(app, "UPDATE principals SET disabled = :f WHERE principal_id = :p", f=False, p=user_id)
    client.app.state.runtime.service.forget_keys()  # type: ignore[attr-defined]
    refused = simulate(client, key["key"])
    assert refused.status_code == 401 and refused.json()["code"] == "auth.key_mismatch"
    assert refused.json()["details"] == {"table": "principals", "row": user_id, "reason": "grant_mismatch"}
    assert ("principals", user_id, "grant_mismatch") in problems(verify(client, keys))


def test_key_inserted_or_its_owner_deleted_is_refused(
    client: TestClient, app: FastAPI, keys: dict[str, str]
) -> None:
    forged = "rsk_0123456789ab_" + "f" * 40
    sql(
        app,
        "INSERT INTO api_keys (key_id, key_hash, roles, label, created_at, principal_id)"
        " VALUES ('0123456789ab', :h, 'admin,compliance', 'x', :at, :p)",
        h=hash_key(forged),
        at=datetime.now(UTC).replace(tzinfo=None),
        p=f"s_{key_id(keys['admin'])}",
    )
    refused = client.get("/v1/admin/users", headers=auth(forged))
    assert refused.status_code == 401 and refused.json()["details"]["reason"] == "seal_missing"
    auditor = key_id(keys["auditor"])
    sql(app, "DELETE FROM principals WHERE principal_id = :p", p=f"s_{auditor}")
    refused = client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert refused.status_code == 401 and refused.json()["details"]["reason"] == "owner_missing"
    found = problems(verify(client, {"auditor": keys["admin"]}))
    assert ("api_keys", "0123456789ab", "seal_missing") in found
    assert ("api_keys", auditor, "owner_missing") in found


@pytest.fixture
def signed_in(client: TestClient, keys: dict[str, str]) -> Iterator[str]:
    user_id = make_user(client, keys["admin"], "赵六", ["auditor"], password=PASSWORD)
    login = client.post("/v1/auth/login", json={"username": "赵六", "password": PASSWORD})
    assert login.status_code == 200, login.text
    yield user_id


def test_session_of_a_person_given_a_role_is_refused(
    client: TestClient, app: FastAPI, keys: dict[str, str], signed_in: str
) -> None:
    assert client.get("/v1/auth/me").status_code == 200
    sql(app, "UPDATE principals SET roles = 'auditor,compliance' WHERE principal_id = :p", p=signed_in)
    refused = client.get("/v1/auth/me")
    assert refused.status_code == 401 and refused.json()["code"] == "auth.grant_mismatch"
    again = client.post("/v1/auth/login", json={"username": "赵六", "password": PASSWORD})
    assert again.status_code == 401 and again.json()["code"] == "auth.grant_mismatch"
    assert ("principals", signed_in, "grant_mismatch") in problems(verify(client, keys))


def test_swapped_password_hash_does_not_sign_in(
    client: TestClient, app: FastAPI, keys: dict[str, str]
) -> None:
    make_user(client, keys["admin"], "攻击者", ["auditor"], password="攻击者的-Password-1")
    victim = make_user(client, keys["admin"], "管理员", ["admin"], password=PASSWORD)
    own = scalar(app, "SELECT password_hash FROM principals WHERE username = '攻击者'")
    sql(app, "UPDATE principals SET password_hash = :h WHERE principal_id = :p", h=own, p=victim)
    refused = client.post("/v1/auth/login", json={"username": "管理员", "password": "攻击者的-Password-1"})
    assert refused.status_code == 401 and refused.json()["code"] == "auth.grant_mismatch"
    assert ("principals", victim, "grant_mismatch") in problems(verify(client, keys))


def test_rows_stored_before_sealing_are_sealed_by_the_migration(empty_database: str) -> None:
    upgrade(empty_database, "0012")
    engine = make_engine(empty_database)
    now = datetime(2026, 11, 1, 2, 0, tzinfo=UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        for kid, roles in (("aaaaaaaaaaaa", "editor"), ("bbbbbbbbbbbb", "ingest")):
            conn.execute(
                text(
                    "INSERT INTO principals (principal_id, kind, name, roles, disabled, failed_logins,"
                    " created_at, updated_at) VALUES (:p, 'service', :p, :r, :f, 0, :at, :at)"
                ),
                {"p": f"s_{kid}", "r": roles, "f": False, "at": now},
            )
            conn.execute(
                text(
                    "INSERT INTO api_keys (key_id, key_hash, roles, label, created_at, principal_id)"
                    " VALUES (:id, :hash, :roles, '', :at, :p)"
                ),
                {
                    "id": kid,
                    "hash": hash_key(f"rsk_{kid}_secret"),
                    "roles": roles,
                    "at": now,
                    "p": f"s_{kid}",
                },
            )
    engine.dispose()
    upgrade(empty_database, "head")
    engine = make_engine(empty_database)
    try:
        store = SqlStore(engine, group_commit=False)
        principal = key_principal(store.find_key_by_hash(hash_key("rsk_aaaaaaaaaaaa_secret")))
        assert principal is not None and principal.roles == frozenset({Role.EDITOR})
        checks = table_checks(engine)
        assert [p for check in checks for p in check()] == []
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE api_keys SET roles = 'ingest,compliance' WHERE key_id = 'bbbbbbbbbbbb'")
            )
        with pytest.raises(GrantMismatchError) as refused:
            store.find_key_by_hash(hash_key("rsk_bbbbbbbbbbbb_secret"))
        assert refused.value.code == "auth.key_mismatch"
        found = [p for check in checks for p in check()]
        assert [(p.table, p.row, p.reason) for p in found] == [("api_keys", "bbbbbbbbbbbb", "grant_mismatch")]
        # Keys made after the migration are sealed by their own entries.
        key_id_new, key = create_api_key(store, frozenset({Role.AUDITOR}), SystemClock(), "new")
        assert key_principal(store.find_key_by_hash(hash_key(key))) is not None
        assert key_id_new
    finally:
        engine.dispose()


def test_session_row_written_by_hand_signs_nobody_in(
    client: TestClient, app: FastAPI, keys: dict[str, str], signed_in: str
) -> None:
    victim = make_user(client, keys["admin"], "管理员", ["admin"], password=PASSWORD)
    token = "chosen-by-the-intruder-" + "x" * 20
    now = datetime.now(UTC)
    sql(
        app,
        "INSERT INTO sessions (session_hash, principal_id, csrf_token, created_at, last_seen_at, expires_at)"
        " VALUES (:h, :p, 'csrf', :at, :at, :until)",
        h=session_hash(token),
        p=victim,
        at=now.replace(tzinfo=None),
        until=(now + timedelta(hours=1)).replace(tzinfo=None),
    )
    client.cookies.clear()
    client.cookies.set("rulesvc_session", token)
    refused = client.get("/v1/admin/users")
    assert refused.status_code == 401 and refused.json()["code"] == "auth.grant_mismatch"
    assert refused.json()["details"]["reason"] == "seal_missing"
