"""GET /v1/decisions/{id}: masked for auditor/admin, clear for compliance (and that read is logged)."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.integration.conftest import auth, engine_of, event

PERSONAL = {"customer_name": "张三", "id_card": "110105199001011232", "mobile": "13812345678"}


def post_loan(client: TestClient, keys: dict[str, str]) -> dict[str, object]:
    response = client.post(
        "/v1/events",
        json=event("loan-1", "loan", remark="客户备用电话13987654321", **PERSONAL),
        headers=auth(keys["ingest"]),
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def keys_sealed(client: TestClient) -> int:
    """Chain entries sealing the test's API keys (they come before the decisions)."""
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        return int(conn.execute(text("SELECT count(*) FROM audit_log WHERE kind = 'key'")).scalar_one())


def test_auditor_and_admin_see_masked_event(client: TestClient, keys: dict[str, str]) -> None:
    decided = post_loan(client, keys)
    for role in ("auditor", "admin"):
        body = client.get(f"/v1/decisions/{decided['decision_id']}", headers=auth(keys[role])).json()
        assert body["masked"] is True
        ticket = body["event"]["ticket"]
        assert ticket["customer_name"] == "张*"
        assert ticket["id_card"] == "110105********1232"
        assert ticket["mobile"] == "138****5678"
        assert ticket["remark"] == "客户备用电话139****4321"
        assert ticket["region"] == "上海浦东" and ticket["amount"] == 800000
        assert body["actions"] == decided["actions"]
        assert body["fired"] == decided["fired"]
        assert body["versions"]["loan-routing"] >= 1
        assert body["event_id"] == "loan-1" and body["ticket_id"] == "L-loan-1"
        assert len(body["chain"]["hash"]) == 64 and body["chain"]["seq"] == keys_sealed(client) + 1
        assert body["decided_at"].endswith("+00:00")


def test_stored_copy_is_masked_and_clear_copy_is_apart(client: TestClient, keys: dict[str, str]) -> None:
    decided = post_loan(client, keys)
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        record = conn.execute(text("SELECT record FROM decisions")).scalar_one()
        audit = " ".join(r[0] for r in conn.execute(text("SELECT payload FROM audit_log")))
        feed = " ".join(r[0] for r in conn.execute(text("SELECT action FROM actions")))
        clear = conn.execute(
            text("SELECT event FROM decision_inputs WHERE decision_id = :d"), {"d": decided["decision_id"]}
        ).scalar_one()
    for value in PERSONAL.values():
        assert value not in record and value not in audit and value not in feed
        assert value in clear


def test_compliance_reads_clear_and_the_read_is_logged(client: TestClient, keys: dict[str, str]) -> None:
    decided = post_loan(client, keys)
    body = client.get(f"/v1/decisions/{decided['decision_id']}", headers=auth(keys["compliance"])).json()
    assert body["masked"] is False
    assert {k: body["event"]["ticket"][k] for k in PERSONAL} == PERSONAL
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        rows = conn.execute(
            text("SELECT seq, kind, subject, payload FROM audit_log WHERE kind <> 'key' ORDER BY seq")
        ).all()
    base = keys_sealed(client)
    assert [(r.seq, r.kind) for r in rows] == [(base + 1, "decision"), (base + 2, "clear_read")]
    assert rows[1].subject == decided["decision_id"]
    assert '"compliance"' in rows[1].payload and "key_id" in rows[1].payload
    verify = client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()
    assert verify == {"ok": True, "checked": base + 2}


def test_masked_reads_are_not_logged(client: TestClient, keys: dict[str, str]) -> None:
    decided = post_loan(client, keys)
    client.get(f"/v1/decisions/{decided['decision_id']}", headers=auth(keys["auditor"]))
    checked = client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["checked"]
    assert checked == keys_sealed(client) + 1


def test_unknown_decision_is_404(client: TestClient, keys: dict[str, str]) -> None:
    for decision_id in (str(uuid.uuid4()), "not-a-uuid", "%00"):
        response = client.get(f"/v1/decisions/{decision_id}", headers=auth(keys["auditor"]))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
