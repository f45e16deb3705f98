"""Finding the PostgreSQL client tools, and their connection string without the password."""

from __future__ import annotations

import pytest

from rulesvc.storage import backup
from rulesvc.storage.backup import BackupError, find_tool, libpq


def test_a_missing_pg_dump_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(backup.glob, "glob", lambda _pattern: [])
    with pytest.raises(BackupError) as caught:
        find_tool("pg_dump")
    assert caught.value.code == "backup.tool_missing"
    assert "postgresql-client" in str(caught.value) and "--pg-dump" in str(caught.value)


def test_the_newest_debian_client_is_taken_when_none_is_on_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    found = ["/usr/lib/postgresql/9/bin/pg_dump", "/usr/lib/postgresql/16/bin/pg_dump"]
    monkeypatch.setattr(backup.glob, "glob", lambda _pattern: found)
    assert find_tool("pg_dump") == "/usr/lib/postgresql/16/bin/pg_dump"


def test_the_password_travels_in_the_environment_not_on_the_command_line() -> None:
    uri, env = libpq("postgresql+psycopg://rulesvc:s3cr%40t@db.internal:5433/rulesvc?sslmode=verify-full")
    assert "s3cr" not in uri and uri.startswith("postgresql://rulesvc@db.internal:5433/rulesvc")
    assert "sslmode=verify-full" in uri
    assert env == {"PGPASSWORD": "s3cr@t"}
