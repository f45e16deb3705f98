"""Encryption at rest of the clear inputs, on SQLite and PostgreSQL: the database alone does not reveal them
(every table read with plain SQL), compliance still reads them, verify still checks them, and the key is
rotated while the service runs (old rows stay readable, `rulesvc data-keys rotate` re-wraps them)."""

from __future__ import annotations

from typing import Any

import typer
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from api.app import create_app
from cli import datakeys as cli_datakeys
from rulesvc.apikeys import Role
from rulesvc.datakeys import Keyring, new_key_text
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.sla.clock import SystemClock
from tests.integration.conftest import RULESETS, auth, engine_of, make_settings

MOBILE = "13987654321"
ID_CARD = "110105199001011232"
NAME = "欧阳靖雯"
FIRST, SECOND = new_key_text(), new_key_text()


def app_with(database_url: str, book: Evaluator, keys: dict[str, str]) -> tuple[TestClient, dict[str, str]]:
    settings = make_settings(database_url, data_keys=keys) if keys else make_settings(database_url)
    app = create_app(settings, book=book)
    store = app.state.runtime.service.keys
    made = {r.value: create_api_key(store, frozenset({r}), SystemClock())[1] for r in Role}
    return TestClient(app), made


def loan(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "ticket.created",
        "occurred_at": "2026-09-30T10:00:00+08:00",
        "ticket": {
            "kind": "loan",
            "id": f"L-{event_id}",
            "amount": 800000,
            "credit_rating": "A",
            "region": "上海浦东",
            "mobile": MOBILE,
            "id_card": ID_CARD,
            "borrower": NAME,
        },
    }


def database_text(client: TestClient) -> str:
    """Every row of the tables holding what was decided, as plain SQL reads them."""
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        rows = [
            *conn.execute(text("SELECT * FROM decision_inputs")).all(),
            *conn.execute(text("SELECT * FROM decisions")).all(),
            *conn.execute(text("SELECT * FROM actions")).all(),
            *conn.execute(text("SELECT * FROM audit_log")).all(),
        ]
    return "\n".join(str(tuple(row)) for row in rows)


def stored_inputs(client: TestClient) -> list[str]:
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        return [str(e) for (e,) in conn.execute(text("SELECT event FROM decision_inputs")).all()]


def test_the_database_alone_does_not_reveal_the_clear_inputs(database_url: str, book: Evaluator) -> None:
    client, keys = app_with(database_url, book, {"k1": FIRST})
    decided = client.post("/v1/events", json=loan("enc-1"), headers=auth(keys["ingest"]))
    assert decided.status_code == 200, decided.text
    dumped = database_text(client)
    for secret in (MOBILE, ID_CARD, NAME):
        assert secret not in dumped
    assert all(e.startswith("enc:v1:k1:") for e in stored_inputs(client))
    clear = client.get(f"/v1/decisions/{decided.json()['decision_id']}", headers=auth(keys["compliance"]))
    assert clear.status_code == 200 and clear.json()["event"]["ticket"]["borrower"] == NAME
    assert client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"] is True
    # A ciphertext moved to another decision's row does not decrypt there (bound to its decision id).
    second = client.post("/v1/events", json=loan("enc-2"), headers=auth(keys["ingest"])).json()
    with engine_of(client.app).begin() as conn:  # type: ignore[arg-type]
        conn.execute(
            text(
                "UPDATE decision_inputs SET event = (SELECT event FROM decision_inputs WHERE decision_id = :a)"
                " WHERE decision_id = :b"
            ),
            {"a": decided.json()["decision_id"], "b": second["decision_id"]},
        )
    moved = client.get(f"/v1/decisions/{second['decision_id']}", headers=auth(keys["compliance"]))
    assert moved.status_code == 503 and moved.json()["code"] == "crypto.data_key"
    verify = client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()
    assert verify["ok"] is False


def test_rotation_without_downtime(database_url: str, book: Evaluator) -> None:
    old, keys = app_with(database_url, book, {"k1": FIRST})
    first = old.post("/v1/events", json=loan("rot-1"), headers=auth(keys["ingest"])).json()["decision_id"]
    # Every replica gets the new key as current; the old one stays readable.
    both, keys = app_with(database_url, book, {"k1": FIRST, "k2": SECOND})
    second = both.post("/v1/events", json=loan("rot-2"), headers=auth(keys["ingest"])).json()["decision_id"]
    assert sorted(e.split(":")[2] for e in stored_inputs(both)) == ["k1", "k2"]
    for decision_id in (first, second):
        read = both.get(f"/v1/decisions/{decision_id}", headers=auth(keys["compliance"]))
        assert read.status_code == 200 and read.json()["event"]["ticket"]["mobile"] == MOBILE
    # Re-wrap what k1 still wraps while the service runs.
    app = typer.Typer()
    cli_datakeys.register(app)
    env = {
        "RULESVC_DATABASE_URL": database_url,
        "RULESVC_RULESETS": str(RULESETS),
        "RULESVC_DATA_KEYS": f'{{"k1": "{FIRST}", "k2": "{SECOND}"}}',
    }
    result = CliRunner().invoke(app, ["data-keys", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    assert '"rewrapped": 1' in result.stdout and '"unchanged": 1' in result.stdout
    assert all(e.startswith("enc:v1:k2:") for e in stored_inputs(both))
    # k1 may now be dropped.
    new, keys = app_with(database_url, book, {"k2": SECOND})
    read = new.get(f"/v1/decisions/{first}", headers=auth(keys["compliance"]))
    assert read.status_code == 200 and read.json()["event"]["ticket"]["id_card"] == ID_CARD
    assert new.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"] is True


def test_rows_stored_in_clear_are_encrypted_by_rotate(database_url: str, book: Evaluator) -> None:
    plain, keys = app_with(database_url, book, {})
    decided = plain.post("/v1/events", json=loan("plain-1"), headers=auth(keys["ingest"])).json()
    assert any(NAME in e for e in stored_inputs(plain))
    from rulesvc.storage.inputs import rotate, use_keyring

    engine = engine_of(plain.app)  # type: ignore[arg-type]
    use_keyring(engine, Keyring.from_texts({"k1": FIRST}))
    assert rotate(engine) == {"rewrapped": 1, "unchanged": 0}
    assert all(e.startswith("enc:v1:k1:") for e in stored_inputs(plain))
    read = plain.get(f"/v1/decisions/{decided['decision_id']}", headers=auth(keys["compliance"]))
    assert read.status_code == 200 and read.json()["event"]["ticket"]["borrower"] == NAME
