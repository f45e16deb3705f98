"""`rulesvc keys create|list|revoke` against the configured database (both backends)."""

from __future__ import annotations

from rulesvc.apikeys import Role, hash_key
from rulesvc.storage import SqlStore, make_engine
from tests.integration.conftest import invoke_cli


def test_create_list_revoke(database_url: str) -> None:
    created = invoke_cli(
        ["keys", "create", "--role", "ingest", "--role", "auditor", "--label", "CRM"], database_url
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("rsk_")
    engine = make_engine(database_url)
    try:
        store = SqlStore(engine)
        found = store.find_key_by_hash(hash_key(key))
        assert found is not None and found.active
        assert found.roles == frozenset({Role.INGEST, Role.AUDITOR}) and found.label == "CRM"
        listed = invoke_cli(["keys", "list"], database_url).stdout
        assert found.key_id in listed and "auditor,ingest" in listed and "CRM" in listed and key not in listed
        assert invoke_cli(["keys", "revoke", found.key_id], database_url).exit_code == 0
        revoked = store.find_key_by_hash(hash_key(key))
        assert revoked is not None and not revoked.active
        assert "revoked" in invoke_cli(["keys", "list"], database_url).stdout
        assert invoke_cli(["keys", "revoke", found.key_id], database_url).exit_code == 1
    finally:
        engine.dispose()


def test_unknown_role_is_refused(database_url: str) -> None:
    result = invoke_cli(["keys", "create", "--role", "root"], database_url)
    assert result.exit_code == 2
    assert "unknown role 'root'" in result.output
