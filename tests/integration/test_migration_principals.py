"""Migration 0011 on SQLite and PostgreSQL: every key stored before it gets a service account of its own
(named by its label, holding its roles), so old keys keep working and stay distinct for four eyes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from rulesvc.apikeys import Role, hash_key
from rulesvc.people.access import key_principal
from rulesvc.storage import SqlStore, make_engine
from tests.integration.test_migration_occurred_at import empty_database, upgrade

__all__ = ["empty_database"]

OLD_KEYS = {"aaaaaaaaaaaa": ("editor", "风险专员张敏"), "bbbbbbbbbbbb": ("approver,ingest", "")}


def test_keys_stored_before_get_a_service_account_each(empty_database: str) -> None:
    upgrade(empty_database, "0010")
    engine = make_engine(empty_database)
    made = datetime(2026, 11, 1, 2, 0, tzinfo=UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        for key_id, (roles, label) in OLD_KEYS.items():
            conn.execute(
                text(
                    "INSERT INTO api_keys (key_id, key_hash, roles, label, created_at)"
                    " VALUES (:id, :hash, :roles, :label, :at)"
                ),
                {
                    "id": key_id,
                    "hash": hash_key(f"rsk_{key_id}_secret"),
                    "roles": roles,
                    "label": label,
                    "at": made,
                },
            )
    engine.dispose()
    upgrade(empty_database, "head")
    engine = make_engine(empty_database)
    try:
        store = SqlStore(engine, group_commit=False)
        first = key_principal(store.find_key_by_hash(hash_key("rsk_aaaaaaaaaaaa_secret")))
        second = key_principal(store.find_key_by_hash(hash_key("rsk_bbbbbbbbbbbb_secret")))
        assert first is not None and second is not None
        assert first.principal_id == "s_aaaaaaaaaaaa" and first.kind == "service"
        assert first.roles == frozenset({Role.EDITOR}) and first.name == "风险专员张敏"
        assert first.actor == "风险专员张敏 (aaaaaaaaaaaa)"  # as lifecycle records named the key before
        assert second.roles == frozenset({Role.APPROVER, Role.INGEST}) and second.actor == "bbbbbbbbbbbb"
        views = {v.key_id: v for v in store.people.key_views()}
        assert (
            views["bbbbbbbbbbbb"].owner is not None
            and views["bbbbbbbbbbbb"].owner.name == "API 密钥 bbbbbbbbbbbb"
        )
    finally:
        engine.dispose()
