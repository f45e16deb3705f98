"""The 审计 page's last verification of the chain (kept by GET /v1/audit/verify; the page itself never
verifies), its key and user administration (GET /v1/audit/administration: who created, disabled,
revoked what, from the audit chain), its latest checkpoint and the button making one (roles auditor,
admin). On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.integration.conftest import auth, event
from tests.integration.lifecycle_support import console_app

app = console_app


def administer(client: TestClient, admin: str) -> tuple[str, str]:
    """A person created, given a key, disabled; the key revoked. Returns (user_id, key_id)."""
    created = client.post(
        "/v1/admin/users",
        json={"name": "赵审", "username": "zhaoshen", "roles": ["auditor"], "password": "audit-page-2026"},
        headers=auth(admin),
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["user_id"]
    key = client.post(f"/v1/admin/users/{user_id}/keys", json={}, headers=auth(admin))
    assert key.status_code == 201, key.text
    key_id = key.json()["key_id"]
    disabled = client.patch(f"/v1/admin/users/{user_id}", json={"disabled": True}, headers=auth(admin))
    assert disabled.status_code == 200, disabled.text
    revoked = client.delete(f"/v1/admin/keys/{key_id}", headers=auth(admin))
    assert revoked.status_code in (200, 204), revoked.text
    return user_id, key_id


def history(client: TestClient, key: str, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/v1/audit/administration", params=params, headers=auth(key))
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


def test_administration_history_newest_first_without_secrets(
    client: TestClient, keys: dict[str, str]
) -> None:
    user_id, key_id = administer(client, keys["admin"])
    entries = history(client, keys["auditor"])
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs, reverse=True)
    mine = [(e["kind"], e["change"]) for e in entries if user_id in (e["subject"], e.get("user_id"))]
    assert mine[:4] == [("key", "revoked"), ("user", "updated"), ("key", "created"), ("user", "created")]
    disabled = next(e for e in entries if e["subject"] == user_id and e["change"] == "updated")
    assert disabled["changed"] == {"status": {"from": "enabled", "to": "disabled"}}
    assert disabled["user_kind"] == "user" and disabled["name"] == "赵审"
    revoked = next(e for e in entries if e["subject"] == key_id and e["change"] == "revoked")
    assert revoked["status"] == "revoked" and revoked["by"]
    assert not any(k.endswith("_sha256") for e in entries for k in e)
    assert len(history(client, keys["auditor"], limit=2)) == 2
    assert client.get("/v1/audit/administration", headers=auth(keys["editor"])).status_code == 403
    bad = client.get("/v1/audit/administration", params={"limit": 0}, headers=auth(keys["auditor"]))
    assert bad.status_code == 422 and bad.json()["code"]


def test_audit_page_shows_administration_and_makes_checkpoints(
    client: TestClient, keys: dict[str, str]
) -> None:
    _, key_id = administer(client, keys["admin"])
    page = client.get("/console/audit", headers=auth(keys["auditor"]))
    assert page.status_code == 200, page.text
    assert (
        'id="administration"' in page.text and f'data-subject="{key_id}" data-change="revoked"' in page.text
    )
    assert "吊销" in page.text and "启用 → 停用" in page.text and "赵审" in page.text
    checkpoint = page.text.split('id="checkpoint"', 1)[1]
    if "audit.checkpoints_unconfigured" in checkpoint:  # PostgreSQL without RULESVC_CHECKPOINT_DIR
        assert 'id="make-checkpoint"' not in checkpoint
        return
    assert "还没有检查点" in checkpoint and 'id="make-checkpoint"' in checkpoint
    made = client.post("/v1/audit/checkpoints", headers=auth(keys["auditor"]))
    assert made.status_code == 200, made.text
    again = client.get("/console/audit", headers=auth(keys["auditor"])).text
    assert f"签至第 <strong>{made.json()['seq']}</strong> 条日志" in again
    compliance = client.get("/console/audit", headers=auth(keys["compliance"]))
    assert compliance.status_code == 200 and 'id="make-checkpoint"' not in compliance.text


def test_the_page_shows_the_last_verification_and_does_not_verify(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    def verify_section() -> str:
        page = client.get("/console/audit", headers=auth(keys["auditor"]))
        assert page.status_code == 200, page.text
        return page.text.split('id="verify"', 1)[1].split("</section>", 1)[0]

    answer = client.post("/v1/events", json=event("audit-1"), headers=auth(keys["ingest"]))
    assert answer.status_code == 200, answer.text
    first = verify_section()
    assert (
        "还没有校验过" in first and 'id="verify-now"' in first and 'data-api-url="/v1/audit/verify"' in first
    )
    assert client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"] is True
    passed = verify_section()
    assert "校验通过" in passed and "校验时间：" in passed
    with app.state.runtime.engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET record = replace(record, 'audit-1', 'audit-x')"))
    assert "校验通过" in verify_section()  # the last result stands until verified again
    assert client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"] is False
    failed = verify_section()
    assert "校验未通过" in failed and "校验通过" not in failed
