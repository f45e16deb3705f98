"""Engine factory and schema migration. Nothing here runs at import time.

SQLite (the embedded default) runs in WAL mode with `synchronous=NORMAL`, a busy timeout, foreign keys
on, and with explicit transactions: reads `BEGIN` (deferred), writes `BEGIN IMMEDIATE`, so that the one
writer SQLite allows is taken up front instead of failing at the first write. PostgreSQL runs with
psycopg 3 at READ COMMITTED; writers serialize on the chain-head row (`SELECT ... FOR UPDATE`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL

MIGRATIONS = Path(__file__).with_name("migrations")
WRITE_OPTION = "rulesvc_write"
# pg_advisory_xact_lock key serializing migrations of several processes starting at once ("rulesvc").
_MIGRATION_LOCK = 0x72756C65737663


def normalise_url(url: str) -> URL:
    """`postgres://` and `postgresql://` use psycopg 3; a SQLite file's folder is created."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return parsed


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30}, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(parsed, **kwargs)


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions begin as writers (`BEGIN IMMEDIATE` on SQLite)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module; we issue BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe when several processes start at once."""
    config = alembic_config()
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_revision(engine: Engine) -> str | None:
    """The schema's current migration id (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
