"""`rulesvc keys create|list|revoke` against the configured database (both backends)."""

from __future__ import annotations

from rulesvc.apikeys import Role, hash_key
from rulesvc.storage import SqlStore, make_engine, migrate
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
    assert "未知角色 'root'" in result.output


def test_first_start_creates_a_local_admin_key_or_says_how_to_make_one(database_url: str) -> None:
    """SQLite default: `serve` shows a new admin key once, framed; any other database (or bootstrap off):
    no key is created and `serve` says how to create the first one on the host."""
    from cli.ops import RULER, first_key_notice
    from rulesvc.settings import Settings

    engine = make_engine(database_url)
    try:
        migrate(engine)
        store = SqlStore(engine)
        settings = Settings(database_url=database_url)
        notice, to_stderr = first_key_notice(settings, store)
        lines = notice.splitlines()
        assert lines.count(RULER) == 2
        if settings.is_embedded:
            assert not to_stderr
            [key] = [line for line in lines if line.startswith("rsk_")]
            found = store.find_key_by_hash(hash_key(key))
            assert found is not None and found.roles == frozenset({Role.ADMIN})
            assert first_key_notice(settings, store) == ("", False)  # a key exists now: nothing more
        else:
            assert to_stderr and store.count_keys() == 0
            assert "rulesvc keys create --role admin" in notice
            # told again at the next start, until someone creates a key
            assert first_key_notice(settings, store) == (notice, True)
    finally:
        engine.dispose()
