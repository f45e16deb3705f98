"""Migrations that rewrite stored rows, on SQLite and PostgreSQL. 0017: decisions get their search terms. 0006: decisions stored before it get the
`occurred_at` of their event (read from the clear input), so backtests over old periods still select them
by when they occurred. 0010: tickets stored before it are sealed into the chain."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from rulesvc.decisions.search import DecisionQuery
from rulesvc.storage import make_engine
from rulesvc.storage.engine import alembic_config, writer
from rulesvc.storage.ruleset_store import SqlRulesetStore
from rulesvc.storage.sql import SqlStore
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


def test_tickets_stored_before_sealing_are_sealed_by_migration_0010(empty_database: str) -> None:
    """Migration 0010 seals tickets stored before it with one `tickets_sealed` entry, so they stay usable and
    `verify` holds; a later edit is then detected."""
    from rulesvc.decisions.service import verify_all
    from rulesvc.storage import SqlStore
    from rulesvc.storage.evidence_reads import SqlEvidenceReader

    upgrade(empty_database, "0009")
    engine = make_engine(empty_database)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tickets (ticket_id, kind, snapshot, group_name, updated_at, timeline)"
                " VALUES ('C-old', 'complaint', '{\"owner\":\"王五\"}', '', :at, '{}')"
            ),
            {"at": datetime(2026, 12, 3, 1, 0)},
        )
    engine.dispose()
    upgrade(empty_database, "head")
    engine = make_engine(empty_database)
    try:
        result = verify_all(SqlStore(engine, group_commit=False), SqlEvidenceReader(engine))
        assert result.ok, result.to_json()
        with engine.begin() as conn:
            assert conn.execute(text("SELECT seal_seq FROM tickets")).scalar_one() == 1
            conn.execute(text("UPDATE tickets SET snapshot = replace(snapshot, '王五', '张冒名')"))
        problems = SqlEvidenceReader(engine).ticket_problems()
        assert [(p.row, p.reason) for p in problems] == [("C-old", "state_mismatch")]
    finally:
        engine.dispose()


def test_decisions_stored_before_search_get_their_terms(empty_database: str) -> None:
    """0017: decisions stored before it can be found by what fired and by their actions' types."""
    upgrade(empty_database, "0016")
    engine = make_engine(empty_database)
    record = (
        '{"fired": [{"ruleset": "loan-approval", "rule": "审批级别#分行审批", "version": 1}],'
        ' "actions": [{"type": "set_approval_level"}]}'
    )
    with engine.begin() as conn:
        for index, text_of in enumerate([record, '{"fired": [], "actions": []}', "not json"]):
            conn.execute(
                text(
                    "INSERT INTO decisions (decision_id, event_id, ticket_id, decided_at, record, input_salt,"
                    " input_digest, chain_seq, chain_hash) VALUES (:d, :e, 't', :at, :r, 's', 'x', :seq, 'h')"
                ),
                {
                    "d": f"d{index}",
                    "e": f"e{index}",
                    "r": text_of,
                    "at": datetime(2026, 12, 3, 1, index, tzinfo=UTC).replace(tzinfo=None),
                    "seq": index + 1,
                },
            )
    engine.dispose()
    upgrade(empty_database, "head")
    store = SqlStore(make_engine(empty_database), group_commit=False)
    try:
        for query in (
            DecisionQuery(rule="loan-approval/审批级别"),
            DecisionQuery(rule="loan-approval/审批级别#分行审批", action_type="set_approval_level"),
        ):
            assert [d.decision_id for d in store.search_decisions(query)] == ["d0"]
        assert [d.decision_id for d in store.search_decisions(DecisionQuery(ticket_id="t"))] == [
            "d2",
            "d1",
            "d0",
        ]
    finally:
        store.engine.dispose()
