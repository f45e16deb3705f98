"""The hot-path statements (`rulesvc.storage.bulk`) on SQLite and PostgreSQL: what they write reads back
through the ORM exactly as if the ORM had written it, rounds return every statement's rows, upserts lock
and keep existing rows, and SQLite writers queue on the write lock."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import psycopg
import pytest
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

import rulesvc.storage.sql as sql_module
from rulesvc.decisions.service import DecisionService, IdempotencyConflictError
from rulesvc.masking import MaskPolicy
from rulesvc.rulebook import RuleBook
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import SqlStore, make_engine, migrate
from rulesvc.storage.bulk import Statements
from rulesvc.storage.engine import writer
from rulesvc.storage.timer_tables import TicketRow, TimerRow
from tests.integration.conftest import RULESETS, event, reset_pg

TICKETS = cast(Table, TicketRow.__table__)
TIMERS = cast(Table, TimerRow.__table__)
SHANGHAI = timezone(timedelta(hours=8))


def _timer(ticket_id: str, name: str, due: datetime | None) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "name": name,
        "generation": 1,
        "calendar": "cn",
        "rule": "投诉时效/受理提醒",
        "status": "running",
        "started_at": datetime(2026, 9, 30, 14, 0, tzinfo=SHANGHAI),
        "duration_us": 7_200_000_000,
        "warnings": '[["提醒", 5400000000]]',
        "anchor_at": datetime(2026, 9, 30, 6, 0, tzinfo=UTC),
        "consumed_us": 0,
        "remaining_us": None,
        "fired": "[]",
        "due_at": due,
        "next_fire_at": due,
        "next_point": "提醒" if due else None,
        "stopped_at": None,
        "updated_at": datetime(2026, 9, 30, 6, 0, tzinfo=UTC),
    }


def test_rows_written_in_rounds_read_back_through_the_orm(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    due = datetime(2026, 9, 30, 8, 0, tzinfo=UTC)
    with Session(writer(engine)) as session, session.begin():
        sql = Statements(session.connection())
        with sql.round():
            sql.insert(
                TICKETS,
                [
                    {
                        "ticket_id": t,
                        "kind": "complaint",
                        "snapshot": '{"owner":"李娜"}',
                        "group_name": "",
                        "updated_at": due,
                    }
                    for t in ("C-1", "C-2")
                ],
            )
            sql.insert(TIMERS, [_timer("C-1", "受理时效", due), _timer("C-2", "受理时效", None)])
        with sql.round():
            locked = sql.insert_or_lock(
                TICKETS,
                "ticket_id",
                [
                    {"ticket_id": t, "kind": "", "snapshot": "{}", "group_name": "", "updated_at": due}
                    for t in ("C-1", "C-3")
                ],
                ("ticket_id", "kind", "snapshot", "updated_at"),
            )
            timers = sql.select(
                TIMERS, ("ticket_id", "name", "due_at", "remaining_us"), "ticket_id", ["C-1", "C-2"]
            )
            none = sql.select(TIMERS, ("ticket_id",), "ticket_id", ["C-404"], for_update=True)
        # an existing row is locked and returned as stored; a new one is created
        assert sorted(locked.all()) == [("C-1", "complaint", '{"owner":"李娜"}', due), ("C-3", "", "{}", due)]
        assert sorted(timers.all()) == [("C-1", "受理时效", due, None), ("C-2", "受理时效", None, None)]
        assert none.all() == []
        ids = dict(session.execute(select(TimerRow.ticket_id, TimerRow.id)).all())
        sql.update(
            TIMERS,
            ["id"],
            [
                {"status": "paused", "remaining_us": 3_600_000_000, "id": ids["C-1"]},
                {"status": "stopped", "remaining_us": None, "id": ids["C-2"]},
            ],
        )
    with Session(engine) as session:
        rows = {row.ticket_id: row for row in session.scalars(select(TimerRow)).all()}
        assert rows["C-1"].status == "paused" and rows["C-1"].remaining_us == 3_600_000_000
        assert rows["C-2"].status == "stopped" and rows["C-2"].next_fire_at is None
        # timestamps come back as the same instants, timezone-aware, whatever zone they were written in
        assert rows["C-1"].started_at == datetime(2026, 9, 30, 6, 0, tzinfo=UTC)
        assert rows["C-1"].due_at == due and rows["C-1"].due_at.tzinfo is not None
        assert rows["C-1"].rule == "投诉时效/受理提醒"
        tickets = {row.ticket_id: row for row in session.scalars(select(TicketRow)).all()}
        assert set(tickets) == {"C-1", "C-2", "C-3"} and tickets["C-1"].snapshot == '{"owner":"李娜"}'
    engine.dispose()


def test_a_failing_round_rolls_back_the_whole_transaction(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    now = datetime(2026, 9, 30, 8, 0, tzinfo=UTC)
    row = {"ticket_id": "C-9", "kind": "complaint", "snapshot": "{}", "group_name": "", "updated_at": now}
    with (
        pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)),
        Session(writer(engine)) as session,
        session.begin(),
    ):
        sql = Statements(session.connection())
        with sql.round():
            sql.insert(TICKETS, [row])
            sql.insert(TICKETS, [row])  # duplicate key
    with Session(engine) as session:
        assert session.scalars(select(TicketRow)).all() == []
    engine.dispose()


def test_sqlite_writers_queue_on_the_write_lock(sqlite_url: str) -> None:
    """A write transaction holds `<file>-writelock` from BEGIN IMMEDIATE until its connection is back in
    the pool; other writers (threads or processes) wait on it in the kernel rather than polling."""
    engine = make_engine(sqlite_url)
    migrate(engine)
    lock_path = f"{engine.url.database}-writelock"

    def lock_is_free() -> bool:
        fd = os.open(lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # closing releases a lock taken here
        return True

    now = datetime(2026, 9, 30, 8, 0, tzinfo=UTC)
    second_done = threading.Event()

    def second_writer() -> None:
        with Session(writer(engine)) as session, session.begin():
            Statements(session.connection()).insert(
                TICKETS,
                [{"ticket_id": "C-2", "kind": "", "snapshot": "{}", "group_name": "", "updated_at": now}],
            )
        second_done.set()

    with Session(writer(engine)) as session, session.begin():
        Statements(session.connection()).insert(
            TICKETS, [{"ticket_id": "C-1", "kind": "", "snapshot": "{}", "group_name": "", "updated_at": now}]
        )
        assert not lock_is_free()
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not second_done.wait(0.3)  # queued behind the first writer
    thread.join(timeout=10)
    assert second_done.is_set()
    assert lock_is_free()
    with Session(engine) as session:
        assert {row.ticket_id for row in session.scalars(select(TicketRow)).all()} == {"C-1", "C-2"}
        assert lock_is_free()  # a reader, inside its transaction, holds no write lock
    engine.dispose()


def test_a_nested_sqlite_write_on_the_same_thread_fails_at_once(sqlite_url: str) -> None:
    """It could only wait for itself; SQLite's own busy timeout used to make that a 30 s stall."""
    engine = make_engine(sqlite_url)
    migrate(engine)
    outcome: list[BaseException | None] = []

    def nested() -> None:
        try:
            with Session(writer(engine)) as outer, outer.begin():
                outer.connection()
                with Session(writer(engine)) as inner, inner.begin():
                    inner.connection()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the nested write waited for itself"
    assert isinstance(outcome[0], RuntimeError) and "wait for itself" in str(outcome[0])
    with Session(writer(engine)) as session, session.begin():  # the outer lock was released
        session.connection()
    engine.dispose()


def test_a_conflicting_twin_committed_after_the_pre_check_is_answered_as_stored(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a batch reads stored twins before it takes the chain head and again after. A twin of
    the same event on another ticket (a conflicting body) that commits in between makes the batch start
    over, and the event is answered with the stored decision (then 409 for the different body)."""
    reset_pg(pg_database)
    engine = make_engine(pg_database)
    store = SqlStore(engine, group_commit=False)
    service = DecisionService(store, store, RuleBook.load([RULESETS]), SystemClock(), MaskPolicy.build())
    ours = service.prepare_event(event("race"))
    twin = service.prepare_event(event("race", id="E-other-ticket"))
    original = sql_module.lock_chain_head
    raced: list[bool] = []

    def lock_after_the_twin_commits(sql: Statements) -> Any:
        if not raced:
            raced.append(True)
            other = threading.Thread(target=store.append_decisions, args=([twin.new],))
            other.start()
            other.join(timeout=10)
        return original(sql)

    monkeypatch.setattr(sql_module, "lock_chain_head", lock_after_the_twin_commits)
    [(stored, created)] = store.append_decisions([ours.new])
    assert raced and not created and stored.decision_id == twin.new.decision_id
    with pytest.raises(IdempotencyConflictError):
        service.finish_event(ours, stored, created)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM decisions").scalar_one() == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar_one() == 1
    assert service.verify_audit().ok
    engine.dispose()


def test_a_sqlite_writer_gives_up_after_the_lock_timeout_and_the_lock_stays_usable(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rulesvc.storage.engine as engine_module

    engine = make_engine(sqlite_url)
    migrate(engine)
    monkeypatch.setattr(engine_module, "WRITE_LOCK_TIMEOUT", 0.3)
    other = os.open(f"{engine.url.database}-writelock", os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)  # another process's writer, stuck
    try:
        with (
            pytest.raises(sqlite3.OperationalError, match="database is locked"),
            Session(writer(engine)) as session,
            session.begin(),
        ):
            session.connection()
    finally:
        os.close(other)
    with Session(writer(engine)) as session, session.begin():  # free again: the abandoned wait let go
        Statements(session.connection()).insert(
            TICKETS,
            [
                {
                    "ticket_id": "C-1",
                    "kind": "",
                    "snapshot": "{}",
                    "group_name": "",
                    "updated_at": datetime.now(UTC),
                }
            ],
        )
    engine.dispose()


def test_an_invalidated_sqlite_writer_releases_the_write_lock(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    migrate(engine)
    with writer(engine).connect() as conn:
        conn.begin()
        conn.invalidate()  # e.g. the connection broke: SQLAlchemy closes it before any check-in
        conn.rollback()
    for _ in range(2):  # the same thread writes again, neither blocked nor refused
        with Session(writer(engine)) as session, session.begin():
            session.connection()
    engine.dispose()


def test_a_value_longer_than_its_column_is_refused_not_cut(pg_database: str) -> None:
    """Arrays are cast without the column's length: the assignment to `VARCHAR(200)` refuses a longer
    value, as SQLAlchemy's insert did, instead of silently keeping its first 200 characters."""
    reset_pg(pg_database)
    engine = make_engine(pg_database)
    now = datetime(2026, 9, 30, 8, 0, tzinfo=UTC)
    row = {"ticket_id": "C-" + "9" * 250, "kind": "", "snapshot": "{}", "group_name": "", "updated_at": now}
    with (
        pytest.raises(psycopg.errors.StringDataRightTruncation),
        Session(writer(engine)) as session,
        session.begin(),
    ):
        Statements(session.connection()).insert(TICKETS, [row])
    with Session(engine) as session:
        assert session.scalars(select(TicketRow)).all() == []
        found = Statements(session.connection()).select(
            TICKETS, ("ticket_id",), "ticket_id", [row["ticket_id"]]
        )
        assert found.all() == []
    engine.dispose()
