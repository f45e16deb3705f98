"""Engine factory and schema migration. Nothing here runs at import time.

SQLite (the embedded default) runs in WAL mode with `synchronous=NORMAL`, a busy timeout, foreign keys
on, and with explicit transactions: reads `BEGIN` (deferred), writes `BEGIN IMMEDIATE`, so that the one
writer SQLite allows is taken up front instead of failing at the first write. PostgreSQL runs with
psycopg 3 at READ COMMITTED; writers serialize on the chain-head row (`SELECT ... FOR UPDATE`).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
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


def make_engine(
    url: str,
    *,
    connect_timeout: float = 3.0,
    pool_timeout: float = 5.0,
    statement_timeout: float = 30.0,
    **kwargs: Any,
) -> Engine:
    """An engine whose waits are bounded: opening a connection (`connect_timeout`), waiting for a pooled one
    (`pool_timeout`, then `sqlalchemy.exc.TimeoutError`) and, on PostgreSQL, each statement
    (`statement_timeout` seconds, 0 for none)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30}, pool_timeout=pool_timeout, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_recycle", 1800)
    connect_args: dict[str, Any] = {"connect_timeout": max(1, round(connect_timeout))}
    if statement_timeout > 0:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    return create_engine(parsed, connect_args=connect_args, pool_timeout=pool_timeout, **kwargs)


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions begin as writers (`BEGIN IMMEDIATE` on SQLite)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _tune_sqlite(engine: Engine) -> None:
    lock_path = _write_lock_path(engine.url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Take transaction control from the sqlite3 module; we issue BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        if lock_path is not None:
            record.info[_LOCK_FD] = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        if immediate:
            _lock_writer(conn.connection.info, lock_path)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        _unlock_writer(record.info)

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection: Any, record: Any) -> None:
        _unlock_writer(record.info)  # an invalidated connection is closed before it is checked in
        fd = record.info.pop(_LOCK_FD, None)
        if fd is not None:
            os.close(fd)


# Writers of one SQLite file queue on an flock of `<file>-writelock` before `BEGIN IMMEDIATE`: the kernel
# wakes a waiter the moment the lock is free, whereas SQLite's busy handler polls with sleeps of up to
# 100 ms, so two busy processes starve each other's writers for seconds. The lock is held by the pooled
# connection from `BEGIN IMMEDIATE` until it returns to the pool (after its commit or rollback). A writer
# waits at most `WRITE_LOCK_TIMEOUT` seconds (SQLite's busy timeout), then fails as SQLite would.
WRITE_LOCK_TIMEOUT = 30.0
_LOCK_FD = "rulesvc_write_lock_fd"
_LOCK_HELD = "rulesvc_write_lock_held"


def _write_lock_path(url: URL) -> str | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-writelock"


def _lock_writer(info: dict[str, Any], path: str | None) -> None:
    fd = info.get(_LOCK_FD)
    if fd is None or path is None or info.get(_LOCK_HELD):
        return
    holder = (threading.get_ident(), path)
    with _HOLDERS_LOCK:
        if holder in _HOLDERS:  # SQLite would have said "database is locked" after its busy timeout
            raise RuntimeError(
                f"a second write transaction on {path[: -len('-writelock')]} from the thread that holds "
                "the first would wait for itself"
            )
    held = _acquire(fd, path, WRITE_LOCK_TIMEOUT)
    with _HOLDERS_LOCK:
        _HOLDERS.add(holder)
    info[_LOCK_HELD] = (holder, held)


def _acquire(fd: int, path: str, timeout: float) -> int:
    """Take the write lock; returns the descriptor that holds it (`fd`, or one opened for the wait)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        pass
    # Wait in the kernel (woken the moment the lock is free) on a descriptor of the waiter's own, in a
    # helper thread, so that the wait can time out; a waiter given up on releases what it gets.
    own = os.open(path, os.O_RDWR)
    got = threading.Event()
    state = {"abandoned": False}
    mutex = threading.Lock()

    def wait() -> None:
        fcntl.flock(own, fcntl.LOCK_EX)
        with mutex:
            abandoned = state["abandoned"]
            got.set()
        if abandoned:
            os.close(own)  # releases the lock

    threading.Thread(target=wait, name="rulesvc-sqlite-write-lock", daemon=True).start()
    got.wait(timeout)
    with mutex:
        if got.is_set():
            return own
        state["abandoned"] = True
    raise sqlite3.OperationalError(f"database is locked (waited {timeout:.0f} s for the write lock {path})")


def _unlock_writer(info: dict[str, Any]) -> None:
    held = info.pop(_LOCK_HELD, None)
    if held is None:
        return
    holder, fd = held
    with _HOLDERS_LOCK:
        _HOLDERS.discard(holder)
    if fd == info.get(_LOCK_FD):
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.close(fd)  # the waiter's own descriptor: closing releases the lock


_HOLDERS: set[tuple[int, str]] = set()  # (thread, lock file) of every write lock this process holds
_HOLDERS_LOCK = threading.Lock()


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
