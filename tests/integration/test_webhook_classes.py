"""Webhook bodies per subscription, on SQLite and PostgreSQL: personal data leaves in clear only to a
subscription granted it (a chain entry), masked by default; a grant written into the database, a cleared
subscription's URL changed, or a clear body put into a masked subscription's row is never honoured or
sent, and `verify` reports the subscription."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from rulesvc.delivery.service import SendResult, WebhookService
from scheduler.delivery import WebhookDeliverer
from tests.integration.conftest import auth, engine_of, event

MOBILE = "13812345678"
ALL = ["公开", "内部", "敏感", "个人信息"]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        self.sent.append((url, orjson.loads(body)))
        return SendResult(200)

    def close(self) -> None:
        pass


@pytest.fixture
def hooks(app: FastAPI) -> Iterator[tuple[WebhookService, Recorder, WebhookDeliverer]]:
    service: WebhookService = app.state.timers.webhooks
    recorder = Recorder()
    deliverer = WebhookDeliverer(service, recorder)
    yield service, recorder, deliverer
    deliverer.stop()


def subscribe(client: TestClient, keys: dict[str, str], url: str, **extra: Any) -> dict[str, Any]:
    body = {"url": url, "from_start": True, **extra}
    response = client.post("/v1/webhooks", json=body, headers=auth(keys["admin"]))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def decide(client: TestClient, keys: dict[str, str]) -> None:
    body = event("wc1")
    body["ticket"]["id"] = f"E-{MOBILE}"
    response = client.post("/v1/events", json=body, headers=auth(keys["ingest"]))
    assert response.status_code == 200, response.text


def sql(app: FastAPI, statement: str, **params: Any) -> None:
    with engine_of(app).begin() as conn:
        conn.execute(text(statement), params)


def verify(client: TestClient, keys: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()
    return result


def by_url(recorder: Recorder, url: str) -> list[dict[str, Any]]:
    return [body for sent_to, body in recorder.sent if sent_to == url]


def test_clear_only_where_the_subscription_is_allowed(
    client: TestClient, keys: dict[str, str], hooks: tuple[WebhookService, Recorder, WebhookDeliverer]
) -> None:
    service, recorder, worker = hooks
    masked = subscribe(client, keys, "http://127.0.0.1:9/masked")
    clear = subscribe(client, keys, "http://127.0.0.1:9/clear", classes=ALL)
    assert masked["classes"] == ["公开", "内部"] and clear["classes"] == ALL
    decide(client, keys)
    assert service.fan_out() > 0
    worker.run_once()
    assert by_url(recorder, "http://127.0.0.1:9/clear") and by_url(recorder, "http://127.0.0.1:9/masked")
    assert all(b["ticket_id"] == f"E-{MOBILE}" for b in by_url(recorder, "http://127.0.0.1:9/clear"))
    assert all(MOBILE not in orjson.dumps(b).decode() for b in by_url(recorder, "http://127.0.0.1:9/masked"))
    result = verify(client, keys)
    assert result["ok"] is True, result


def test_grant_written_into_the_database_is_not_honoured(
    client: TestClient,
    app: FastAPI,
    keys: dict[str, str],
    hooks: tuple[WebhookService, Recorder, WebhookDeliverer],
) -> None:
    service, recorder, worker = hooks
    masked = subscribe(client, keys, "http://127.0.0.1:9/masked")
    clear = subscribe(client, keys, "http://127.0.0.1:9/clear", classes=ALL)
    sql(
        app,
        "UPDATE webhook_subscriptions SET classes = :c WHERE id = :i",
        c=orjson.dumps(ALL).decode(),
        i=masked["id"],
    )
    sql(app, "UPDATE webhook_subscriptions SET url = 'http://127.0.0.1:9/evil' WHERE id = :i", i=clear["id"])
    decide(client, keys)
    assert service.fan_out() > 0
    worker.run_once()
    assert recorder.sent
    assert all(MOBILE not in orjson.dumps(body).decode() for _, body in recorder.sent)
    problems = {(p["table"], p["row"], p["reason"]) for p in verify(client, keys).get("problems", [])}
    assert ("webhook_subscriptions", masked["id"], "grant_missing") in problems
    assert ("webhook_subscriptions", clear["id"], "grant_mismatch") in problems


def test_clear_body_in_a_masked_subscription_is_not_sent(
    client: TestClient,
    app: FastAPI,
    keys: dict[str, str],
    hooks: tuple[WebhookService, Recorder, WebhookDeliverer],
) -> None:
    service, recorder, worker = hooks
    subscribe(client, keys, "http://127.0.0.1:9/masked")
    decide(client, keys)
    assert service.fan_out() > 0
    masked_id = orjson.dumps("E-138****5678").decode()
    sql(app, f"UPDATE webhook_deliveries SET body = replace(body, '{masked_id}', '\"E-{MOBILE}\"')")
    worker.run_once()
    assert all(MOBILE not in orjson.dumps(body).decode() for _, body in recorder.sent)
    dead = service.deliveries(None, "dead", 0, 100)
    assert dead and all((d.last_error or "").startswith("audit.evidence_mismatch") for d in dead)
