"""An intruder with write access to the database edits what the service acts on; every edit is detected by
`GET /v1/audit/verify` (and `rulesvc audit verify`) and blocked where the row is used.

Each case edits the database directly with plain SQL, as the attacker would, on both databases.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.delivery.service import SendResult, WebhookService
from rulesvc.sla.clock import SystemClock
from rulesvc.storage.evidence_reads import SqlEvidenceReader
from rulesvc.storage.webhook_store import SqlWebhookStore
from scheduler.delivery import WebhookDeliverer
from tests.integration.conftest import auth, engine_of, event, invoke_cli, make_settings
from tests.integration.lifecycle_support import clear_lifecycle, lifecycle_app

SECRET = "whsec_" + "t" * 32


@pytest.fixture
def checkpoint_dir(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints"


@pytest.fixture
def app(database_url: str, book: Evaluator, checkpoint_dir: Path) -> FastAPI:
    return create_app(make_settings(database_url, checkpoint_dir=checkpoint_dir), book=book)


@pytest.fixture
def paid(client: TestClient, keys: dict[str, str]) -> str:
    """Two decisions; the second triggers a payment of 4999.99. Returns its decision id."""
    client.post("/v1/events", json=event("t1", amount=120), headers=auth(keys["ingest"]))
    body = client.post("/v1/events", json=event("t2"), headers=auth(keys["ingest"])).json()
    assert any(a["type"] == "trigger_payment" and a["amount"] == 4999.99 for a in body["actions"]), body
    return str(body["decision_id"])


def verify(client: TestClient, keys: dict[str, str]) -> dict[str, Any]:
    response = client.get("/v1/audit/verify", headers=auth(keys["auditor"]))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def sql(client: TestClient, statement: str, **params: Any) -> None:
    with engine_of(client.app).begin() as conn:  # type: ignore[arg-type]
        conn.execute(text(statement), params)


def keys_sealed(client: TestClient) -> int:
    """Chain entries sealing the test's API keys (they come before the decisions)."""
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        return int(conn.execute(text("SELECT count(*) FROM audit_log WHERE kind = 'key'")).scalar_one())


def reasons(result: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["table"], p["reason"]) for p in result.get("problems", [])}


class Recorder:
    """Stands in for the network: records what would have been sent (signed headers and body)."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, str], bytes]] = []

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        self.sent.append((headers, body))
        return SendResult(200)

    def close(self) -> None:
        pass


@pytest.fixture
def deliverer(app: FastAPI) -> Iterator[tuple[WebhookService, Recorder, WebhookDeliverer]]:
    engine = app.state.runtime.engine
    service = WebhookService(SqlWebhookStore(engine), SystemClock(), evidence=SqlEvidenceReader(engine))
    recorder = Recorder()
    deliverer = WebhookDeliverer(service, recorder)
    yield service, recorder, deliverer
    deliverer.stop()


def test_untouched_database_verifies(client: TestClient, keys: dict[str, str], paid: str) -> None:
    assert verify(client, keys) == {"ok": True, "checked": keys_sealed(client) + 2}
    feed = client.get("/v1/actions", headers=auth(keys["ingest"]))
    assert feed.status_code == 200 and feed.json()["records"]


def test_edited_feed_action_is_reported_and_never_served_or_delivered(
    client: TestClient,
    keys: dict[str, str],
    paid: str,
    deliverer: tuple[WebhookService, Recorder, WebhookDeliverer],
) -> None:
    sql(client, "UPDATE actions SET action = replace(action, '4999.99', '499999.99')")

    result = verify(client, keys)
    assert result["ok"] is False and ("actions", "action_mismatch") in reasons(result), result

    feed = client.get("/v1/actions", headers=auth(keys["ingest"]))
    assert feed.status_code == 503, feed.text
    assert feed.json()["code"] == "audit.evidence_mismatch"
    assert feed.json()["details"]["table"] == "actions"
    assert "499999.99" not in feed.text

    service, recorder, worker = deliverer
    service.create_subscription("http://127.0.0.1:9/hook", secret=SECRET, from_start=True)
    worker.run_once()
    assert all(b"499999.99" not in body for _, body in recorder.sent)
    dead = service.deliveries(None, "dead", 0, 100)
    assert dead and all((d.last_error or "").startswith("audit.evidence_mismatch") for d in dead)


def test_edited_webhook_body_is_reported_and_not_signed(
    client: TestClient,
    keys: dict[str, str],
    paid: str,
    deliverer: tuple[WebhookService, Recorder, WebhookDeliverer],
) -> None:
    service, recorder, worker = deliverer
    service.create_subscription("http://127.0.0.1:9/hook", secret=SECRET, from_start=True)
    assert service.fan_out() > 0
    sql(client, "UPDATE webhook_deliveries SET body = replace(body, '4999.99', '88888.88')")

    result = verify(client, keys)
    assert result["ok"] is False and ("webhook_deliveries", "action_mismatch") in reasons(result), result

    worker.run_once()
    assert recorder.sent, "the untouched deliveries still go out"
    assert all(b"88888.88" not in body for _, body in recorder.sent)
    [dead] = service.deliveries(None, "dead", 0, 100)
    assert (dead.last_error or "").startswith("audit.evidence_mismatch")


def test_intact_deliveries_are_signed_and_sent(
    client: TestClient,
    keys: dict[str, str],
    paid: str,
    deliverer: tuple[WebhookService, Recorder, WebhookDeliverer],
) -> None:
    service, recorder, worker = deliverer
    service.create_subscription("http://127.0.0.1:9/hook", secret=SECRET, from_start=True)
    worker.run_once()
    bodies = [orjson.loads(body) for _, body in recorder.sent]
    assert any(b["action"]["type"] == "trigger_payment" for b in bodies)
    assert service.deliveries(None, "dead", 0, 100) == []


def delete_newest(client: TestClient, decision_id: str) -> None:
    """Remove the newest decision and its chain entry and move the head back, as an intruder would."""
    with engine_of(client.app).begin() as conn:  # type: ignore[arg-type]
        seq = conn.execute(
            text("SELECT chain_seq FROM decisions WHERE decision_id = :d"), {"d": decision_id}
        ).scalar_one()
        prev = conn.execute(text("SELECT prev_hash FROM audit_log WHERE seq = :s"), {"s": seq}).scalar_one()
        conn.execute(text("DELETE FROM decisions WHERE decision_id = :d"), {"d": decision_id})
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": seq})
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": seq - 1, "h": prev}
        )


def payments(client: TestClient) -> int:
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        found = conn.execute(text("SELECT count(*) FROM actions WHERE action LIKE '%trigger_payment%'"))
        return int(found.scalar_one())


def test_deleted_tail_is_detected_and_the_event_is_not_decided_twice(
    client: TestClient, keys: dict[str, str], paid: str, checkpoint_dir: Path, database_url: str
) -> None:
    made = client.post("/v1/audit/checkpoints", headers=auth(keys["auditor"]))
    assert made.status_code == 200, made.text
    assert made.json()["seq"] == keys_sealed(client) + 2
    delete_newest(client, paid)

    result = verify(client, keys)
    assert result["ok"] is False, result
    assert ("audit_log", "checkpoint_not_extended") in reasons(result)
    assert ("actions", "decision_missing") in reasons(result)  # the payment left in the feed
    assert result["checkpoints"] == 1

    before = payments(client)
    again = client.post("/v1/events", json=event("t2"), headers=auth(keys["ingest"]))
    assert again.status_code == 503, again.text
    assert again.json()["code"] == "audit.chain_rolled_back"
    assert payments(client) == before

    # An external auditor, offline, from the database and the checkpoint directory.
    offline = invoke_cli(["audit", "verify", "--checkpoints", str(checkpoint_dir)], database_url)
    assert offline.exit_code == 1, offline.stdout
    assert ("audit_log", "checkpoint_not_extended") in reasons(json.loads(offline.stdout))


def test_deleted_tail_is_refused_after_a_restart_from_the_checkpoint(
    client: TestClient,
    keys: dict[str, str],
    paid: str,
    database_url: str,
    book: Evaluator,
    checkpoint_dir: Path,
) -> None:
    assert client.post("/v1/audit/checkpoints", headers=auth(keys["admin"])).status_code == 200
    delete_newest(client, paid)
    restarted = create_app(make_settings(database_url, checkpoint_dir=checkpoint_dir), book=book)
    with TestClient(restarted) as fresh:
        again = fresh.post("/v1/events", json=event("t2"), headers=auth(keys["ingest"]))
        assert again.status_code == 503 and again.json()["code"] == "audit.chain_rolled_back"


def test_checkpoints_routes_roles_and_signatures(
    client: TestClient, keys: dict[str, str], paid: str, checkpoint_dir: Path, database_url: str
) -> None:
    assert client.get("/v1/audit/checkpoints/latest", headers=auth(keys["auditor"])).status_code == 404
    for role in ("ingest", "compliance", "editor"):
        assert client.post("/v1/audit/checkpoints", headers=auth(keys[role])).status_code == 403
    made = client.post("/v1/audit/checkpoints", headers=auth(keys["auditor"])).json()
    assert set(made) == {"seq", "head_hash", "at", "key_id", "public_key", "signature"}
    latest = client.get("/v1/audit/checkpoints/latest", headers=auth(keys["auditor"])).json()
    assert latest == made
    assert verify(client, keys) == {"ok": True, "checked": keys_sealed(client) + 2, "checkpoints": 1}
    ok = invoke_cli(
        ["audit", "verify", "--checkpoints", str(checkpoint_dir), "--public-key", made["public_key"]],
        database_url,
    )
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True, ok.stdout

    # A checkpoint file edited to vouch for another head no longer verifies.
    [file] = checkpoint_dir.glob("checkpoint-*.json")
    forged = {**made, "head_hash": "f" * 64}
    file.write_text(json.dumps(forged))
    result = verify(client, keys)
    assert result["ok"] is False and ("checkpoints", "checkpoint_bad_signature") in reasons(result)


def test_rewritten_entry_is_refused_a_new_checkpoint(
    client: TestClient, keys: dict[str, str], paid: str
) -> None:
    assert client.post("/v1/audit/checkpoints", headers=auth(keys["auditor"])).status_code == 200
    client.post("/v1/events", json=event("t3"), headers=auth(keys["ingest"]))
    sql(client, "UPDATE audit_log SET payload = replace(payload, 't3', 'zz') WHERE kind = 'decision'")
    refused = client.post("/v1/audit/checkpoints", headers=auth(keys["auditor"]))
    assert refused.status_code == 409 and refused.json()["code"] == "audit.chain_broken"


def test_edited_ruleset_version_fails_the_audit_verify(database_url: str, tmp_path: Path) -> None:
    clear_lifecycle(database_url)
    app = lifecycle_app(make_settings(database_url, checkpoint_dir=tmp_path / "cp"))
    with TestClient(app) as client:
        auditor = create_api_key(app.state.runtime.service.keys, frozenset({Role.AUDITOR}), SystemClock())[1]
        assert verify(client, {"auditor": auditor})["ok"] is True
        sql(
            client,
            "UPDATE ruleset_versions SET content = replace(content, '< 5000', '< 50000') "
            "WHERE content LIKE '%< 5000%'",
        )
        result = verify(client, {"auditor": auditor})
        assert result["ok"] is False and ("ruleset_versions", "content_mismatch") in reasons(result), result


def test_ticket_ids_carrying_personal_data_are_sealed_by_the_clear_id(
    client: TestClient, keys: dict[str, str]
) -> None:
    """The seal names the ticket by its clear id (a masked id was compared: such tickets failed verify and
    their next event was refused)."""
    for n in (1, 2):
        body = event(f"pii-ticket-{n}")
        body["ticket"]["id"] = "E-13812345678"
        response = client.post("/v1/events", json=body, headers=auth(keys["ingest"]))
        assert response.status_code == 200, response.text
    result = client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()
    assert result["ok"] is True, result
