"""Copies of a database while the service runs, and putting a copy back.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies every page in one step under a read
transaction, so the copy is one consistent state even while writers commit (WAL mode); the copy is turned
into a single self-contained file (rollback journal, no `-wal` beside it).

PostgreSQL: `pg_dump -Fc` (custom format, for `pg_restore`) of a snapshot exported by a read-only
REPEATABLE READ transaction, in which the chain head is read too: the head reported is exactly the one in
the dump. The password goes to `pg_dump`/`pg_restore` through `PGPASSWORD`, never on their command line.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, make_url, text
from sqlalchemy.engine import URL

from rulesvc.errors import RulesvcError
from rulesvc.storage.engine import alembic_config, make_engine


class BackupError(RulesvcError):
    """A copy cannot be taken or put back (stable `code`, Chinese message)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Copied:
    """What a copy holds: the chain head (seq, hash) and the schema revision."""

    seq: int
    head_hash: str
    revision: str | None


def backend(url: str) -> str:
    """`sqlite` or `postgresql`."""
    return make_url(url).get_backend_name()


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("backup.sqlite_path", f"{url} 不是 SQLite 数据库文件，无法备份或恢复")
    return Path(database)


def copy_sqlite(source: Path, target: Path) -> Copied:
    """An online, consistent copy of the SQLite file `source` into `target` (which must not exist)."""
    if not source.is_file():
        raise BackupError("backup.source_missing", f"数据库文件 {source} 不存在")
    _fresh_target(target)
    temporary = target.with_name(f".{target.name}.partial")
    temporary.unlink(missing_ok=True)
    with (
        sqlite3.connect(source, timeout=30) as src,
        sqlite3.connect(temporary) as dst,
    ):
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)  # pages=-1: every page in one step, under one read transaction
        dst.execute("PRAGMA journal_mode=DELETE")
        copied = _sqlite_contents(dst)
    src.close()
    dst.close()
    os.replace(temporary, target)
    return copied


def restore_sqlite(source: Path, target: Path) -> None:
    """Put the copy `source` in place as the database file `target` (which must not exist)."""
    if not source.is_file():
        raise BackupError("backup.source_missing", f"备份文件 {source} 不存在")
    _fresh_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _fresh_target(target: Path) -> None:
    if target.exists() or target.with_name(target.name + "-wal").exists():
        raise BackupError("backup.target_exists", f"{target} 已存在：不会覆盖，请指定新文件")


def _sqlite_contents(conn: sqlite3.Connection) -> Copied:
    head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return Copied(int(head[0]), str(head[1]), str(revision[0]) if revision else None)


def find_tool(name: str, configured: str | None = None) -> str:
    """The PostgreSQL client program `name` (pg_dump, pg_restore): `configured`, else on the PATH, else the
    newest under /usr/lib/postgresql/*/bin (Debian's layout)."""
    if configured:
        if shutil.which(configured) is None:
            raise BackupError("backup.tool_missing", f"找不到 {configured}")
        return configured
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major_version)
    if candidates:
        return candidates[-1]
    raise BackupError(
        "backup.tool_missing",
        f"找不到 {name}（PostgreSQL 客户端工具）：请安装与数据库服务器同一主版本的 postgresql-client"
        f"（Debian/Ubuntu：apt-get install postgresql-client），或用 --{name.replace('_', '-')} 指定其路径；"
        "也可以按 docs/operations.md 直接运行 pg_dump -Fc / pg_restore",
    )


def _major_version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """The libpq connection URI of a SQLAlchemy PostgreSQL URL (no password in it) and the environment
    that carries the password."""
    parsed: URL = make_url(url)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    plain = URL.create(
        "postgresql", parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query
    )
    return plain.render_as_string(hide_password=False), env


def dump_postgres(url: str, target: Path, pg_dump: str | None = None) -> Copied:
    """`pg_dump -Fc` of one consistent snapshot into `target` (which must not exist)."""
    import psycopg

    program = find_tool("pg_dump", pg_dump)
    _fresh_target(target)
    uri, env = libpq(url)
    temporary = target.with_name(f".{target.name}.partial")
    temporary.unlink(missing_ok=True)
    with psycopg.connect(uri, password=env.get("PGPASSWORD")) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert row is not None and head is not None
        command = [program, "--format=custom", f"--snapshot={row[0]}", f"--file={temporary}", uri]
        done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
        conn.rollback()
    if done.returncode != 0:
        temporary.unlink(missing_ok=True)
        raise BackupError(
            "backup.pg_dump_failed", f"pg_dump 失败（退出码 {done.returncode}）：{done.stderr.strip()}"
        )
    os.replace(temporary, target)
    return Copied(int(head[0]), str(head[1]), str(revision[0]) if revision else None)


def restore_postgres(source: Path, url: str, pg_restore: str | None = None) -> None:
    """`pg_restore` of a `pg_dump -Fc` file into the database `url`, which must hold no rulesvc tables, in
    one transaction; objects are owned by the user restoring (`--no-owner --no-acl`)."""
    if not source.is_file():
        raise BackupError("backup.source_missing", f"备份文件 {source} 不存在")
    program = find_tool("pg_restore", pg_restore)
    if not is_empty(url):
        raise BackupError(
            "backup.target_not_empty", "目标数据库已有 rulesvc 的表：只恢复到新建的空数据库（createdb）"
        )
    uri, env = libpq(url)
    command = [
        program,
        "--no-owner",
        "--no-acl",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={uri}",
        str(source),
    ]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(
            "backup.pg_restore_failed", f"pg_restore 失败（退出码 {done.returncode}）：{done.stderr.strip()}"
        )


def is_empty(url: str) -> bool:
    """True when the database has no `audit_head` table (nothing of rulesvc in it yet)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                found = conn.execute(
                    text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_head'")
                ).first()
            else:
                found = conn.execute(text("SELECT to_regclass('audit_head')")).scalar()
            return not found
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest schema revision this release migrates to."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revision_of(url: str) -> str | None:
    """The alembic revision of the database at `url` (None: not migrated)."""
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table("alembic_version"):
            return None
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return str(revision) if revision is not None else None
    finally:
        engine.dispose()
