"""Migration 0006 on SQLite and PostgreSQL: decisions stored before it get the `occurred_at` of their event
(read from the clear input), so backtests over old periods still select them by when they occurred."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from rulesvc.storage import make_engine
from rulesvc.storage.engine import alembic_config, writer
from rulesvc.storage.ruleset_store import SqlRulesetStore
from tests.integration.conftest import _pg_admin, pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"rulesvc_mig_{secrets.token_hex(4)}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def upgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        config = alembic_config()
        with writer(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def test_decisions_stored_before_get_their_occurred_at(empty_database: str) -> None:
    upgrade(empty_database, "0005")
    engine = make_engine(empty_database)
    decided = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    with engine.begin() as conn:
        for index, event in enumerate(
            [
                '{"event_id": "e1", "occurred_at": "2026-11-05T10:00:00+08:00", "type": "ticket.created"}',
                '{"event_id": "e2", "occurred_at": "not a time"}',
            ]
        ):
            conn.execute(
                text(
                    "INSERT INTO decisions (decision_id, event_id, ticket_id, decided_at, record, input_salt,"
                    " input_digest, chain_seq, chain_hash) VALUES (:d, :e, 't', :at, '{}', 's', 'x', :seq, 'h')"
                ),
                {"d": f"d{index}", "e": f"e{index}", "at": decided.replace(tzinfo=None), "seq": index + 1},
            )
            conn.execute(
                text("INSERT INTO decision_inputs (decision_id, event) VALUES (:d, :event)"),
                {"d": f"d{index}", "event": event},
            )
    engine.dispose()
    upgrade(empty_database, "head")
    store = SqlRulesetStore(make_engine(empty_database))
    november = store.logged_decisions(
        datetime.fromisoformat("2026-11-01T00:00:00+08:00"),
        datetime.fromisoformat("2026-12-01T00:00:00+08:00"),
        10,
    )
    assert [(d.decision_id, d.occurred_at) for d in november] == [
        ("d0", datetime.fromisoformat("2026-11-05T10:00:00+08:00"))
    ]
    store.engine.dispose()
