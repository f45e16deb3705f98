"""PostgreSQL computes a re-plan claim's seal digests and entry hashes byte for byte as Python does
(`rulesvc.storage.ticket_seals`): strings needing JSON escapes, names in code point order, instants with and
without fractions, timers of other calendars, stopped or never versioned; a state it spells differently
would only send the ticket to the Python check, but then every claim would pay for it. A claim's chain entry
appended by the server verifies as any other, and nothing is appended behind the watermark."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from rulesvc.audit.chain import GENESIS, ChainEntry, entry_hash
from rulesvc.audit.evidence import ChainRolledBackError
from rulesvc.decisions.ports import NewDecision
from rulesvc.decisions.search import ACTION_TERM
from rulesvc.storage import make_engine
from rulesvc.storage.bulk import Statements
from rulesvc.storage.decision_writes import (
    _WATERMARKS,
    append_prepared,
    appended,
    prepare_decisions,
    raise_watermark,
)
from rulesvc.storage.tables import AuditRow
from rulesvc.storage.ticket_seals import SEALED_TIMER_COLUMNS, state_digest
from rulesvc.storage.timer_store import _REPLAN_DIGESTS, _SEAL_ENTRIES_CHECKED
from rulesvc.storage.timer_tables import TicketRow, TimerRow
from tests.integration.conftest import reset_pg

AWKWARD = [
    'quote " and \\ back',
    "line\nbreak\ttab\x01\x1f",
    "中文 ticket",
    "emoji 😀",
    "sep \u2028 \x7f",
    "",
]
EAST = timezone(timedelta(hours=8))


@pytest.fixture
def engine(pg_database: str) -> Iterator[Engine]:
    reset_pg(pg_database)
    built = make_engine(pg_database)
    try:
        yield built
    finally:
        built.dispose()


def _timer(
    ticket_id: str, name: str, calendar: str, status: str, version: int | None, at: datetime
) -> TimerRow:
    return TimerRow(
        ticket_id=ticket_id,
        name=name,
        generation=3,
        calendar=calendar,
        rule='loan-sla/"启动"\\计时',
        status=status,
        started_at=at,
        duration_us=14_400_000_000,
        warnings='[["预警",3600000000]]',
        anchor_at=at + timedelta(microseconds=123_456),
        consumed_us=7,
        fired='["warn\\"1"]',
        updated_at=at,
        calendar_version=version,
    )


def test_digests_and_entry_hashes_match_python(engine: Engine) -> None:
    start = datetime(2027, 2, 19, 16, 0, tzinfo=EAST)
    ids = [f"T-{i}-{text_}" for i, text_ in enumerate(AWKWARD)]
    with Session(engine) as session, session.begin():
        for index, ticket_id in enumerate(ids):
            session.add(
                TicketRow(
                    ticket_id=ticket_id,
                    kind="loan" if index % 2 else AWKWARD[index],
                    snapshot=json.dumps({"id": index, "note": 'a\nb "q"'}, ensure_ascii=False),
                    group_name=AWKWARD[-index - 1],
                    updated_at=start,
                    timeline='{"points":["中"]}' if index % 2 else "{}",
                    seal_seq=None,
                )
            )
            if index == 0:
                continue  # a ticket without timers
            names = ["b", "A", "中", "é", "😀", "a b"][: index + 1]
            for n, name in enumerate(names):
                calendar = "cn" if n % 3 else "hk"
                status = ("running", "paused", "stopped")[n % 3]
                version = None if n == 4 else 1 + n % 2
                session.add(_timer(ticket_id, name, calendar, status, version, start + timedelta(seconds=n)))
        for seq, value in enumerate(AWKWARD, start=1):
            payload = json.dumps({"tickets": {str(seq): "x"}})
            at = (start + timedelta(microseconds=seq)).isoformat()
            fields = (seq, at, value or "decision", value, payload, f"{seq:064x}")
            session.add(
                AuditRow(
                    seq=seq,
                    at=at,
                    kind=fields[2],
                    subject=value,
                    payload=payload,
                    prev_hash=fields[5],
                    hash=entry_hash(*fields) if seq % 2 else "0" * 64,  # even seqs: a forged hash
                )
            )
        session.flush()
        session.execute(
            text("UPDATE tickets SET seal_seq = :seq WHERE ticket_id = :id"), {"seq": 1, "id": ids[1]}
        )

    with engine.connect() as conn:
        params: dict[str, Any] = {"ids": ids, "calendar": "cn", "version": 5}
        digests = {row[0]: row[2:] for row in conn.exec_driver_sql(_REPLAN_DIGESTS, params)}
        tickets = {t.ticket_id: t for t in conn.execute(select(TicketRow))}
        timers: dict[str, list[dict[str, Any]]] = {ticket_id: [] for ticket_id in ids}
        for row in conn.execute(select(TimerRow)):
            timers[row.ticket_id].append({c: getattr(row, c) for c in SEALED_TIMER_COLUMNS})
        checked = {row[0]: row[-1] for row in conn.exec_driver_sql(_SEAL_ENTRIES_CHECKED, {"ids": ids})}
        entries = list(conn.execute(select(AuditRow)))

    assert set(digests) == set(ids)
    for ticket_id in ids:
        ticket = tickets[ticket_id]
        stored = timers[ticket_id]
        moved = [
            {**row, "calendar_version": 5}
            if row["calendar"] == "cn"
            and row["status"] in ("running", "paused")
            and (row["calendar_version"] or 0) < 5
            else row
            for row in stored
        ]
        state = (ticket_id, ticket.kind, ticket.group_name, ticket.snapshot, ticket.timeline)
        assert digests[ticket_id] == (state_digest(*state, stored), state_digest(*state, moved)), ticket_id
    assert checked == {1: True}  # only the entries tickets point at, hash recomputed
    with engine.connect() as conn:
        every = {
            row[0]: row[-1] for row in conn.exec_driver_sql(_SEAL_ENTRIES_CHECKED.split(" WHERE ", 1)[0], {})
        }
    for entry in entries:
        python = entry_hash(entry.seq, entry.at, entry.kind, entry.subject, entry.payload, entry.prev_hash)
        assert every[entry.seq] == (python == entry.hash), entry.seq
    assert sorted(every.values()) == [False, False, False, True, True, True]


def _claim_decision(at: datetime) -> NewDecision:
    record = {"decision_id": "d-1", "actions": [{"type": "reschedule_timer"}] * 2, "fired": []}
    return NewDecision(
        decision_id="d-1",
        event_id="replan:cn:v2:d-1",
        ticket_id="",
        decided_at=at,
        record_text=json.dumps(record),
        clear_input_text='{"type":"calendar.replanned"}',
        input_salt="salt",
        input_digest="digest",
        actions=record["actions"],  # type: ignore[arg-type]
        audit_payload={"decision_id": "d-1", "moved": 2},
        occurred_at=at,
        action_tickets=["A-1", "A-2"],
        record=record,
    )


def test_a_claim_entry_chained_by_the_server_verifies_and_respects_the_watermark(engine: Engine) -> None:
    at = datetime(2027, 2, 19, 17, 0, tzinfo=EAST)
    with Session(engine) as session, session.begin():
        for ticket_id in ("A-1", "A-2"):
            session.add(
                TicketRow(ticket_id=ticket_id, kind="loan", snapshot="{}", group_name="", updated_at=at)
            )
    seals = {"A-1": "1" * 64, "A-2": "2" * 64}

    # behind the watermark (entries seen written were deleted): nothing is written
    with engine.begin() as conn:
        sql = Statements(conn)
        raise_watermark(sql.pool, 10**9)
        try:
            prepared = prepare_decisions(sql.pool, [_claim_decision(at)], seals, at)
            with sql.round():
                rows = append_prepared(sql, prepared)
            assert rows is not None
            with pytest.raises(ChainRolledBackError):
                appended(rows, prepared)
            assert conn.exec_driver_sql("SELECT count(*) FROM decisions").scalar() == 0
            assert conn.exec_driver_sql("SELECT count(*) FROM actions").scalar() == 0
        finally:
            _WATERMARKS.pop(sql.pool, None)

    with engine.begin() as conn:
        sql = Statements(conn)
        prepared = prepare_decisions(sql.pool, [_claim_decision(at)], seals, at)
        with sql.round():
            rows = append_prepared(sql, prepared)
        assert rows is not None
        [stored], seq = appended(rows, prepared)
    assert (seq, stored.chain_seq) == (1, 1)
    with engine.connect() as conn:
        [entry] = [ChainEntry(*row) for row in conn.exec_driver_sql("SELECT * FROM audit_log")]
        assert entry.hash == entry_hash(
            entry.seq, entry.at, entry.kind, entry.subject, entry.payload_text, GENESIS
        )
        assert (entry.prev_hash, stored.chain_hash) == (GENESIS, entry.hash)
        assert entry.payload["tickets"] == seals
        assert conn.exec_driver_sql("SELECT seq, hash FROM audit_head").one() == (1, entry.hash)
        feed = conn.exec_driver_sql("SELECT ticket_id, decision_id FROM actions ORDER BY cursor").all()
        assert feed == [("A-1", "d-1"), ("A-2", "d-1")]
        sealed = conn.exec_driver_sql("SELECT ticket_id, seal_seq FROM tickets ORDER BY ticket_id").all()
        assert sealed == [("A-1", 1), ("A-2", 1)]
        chained = conn.exec_driver_sql("SELECT chain_seq, chain_hash FROM decisions").one()
        assert chained == (1, entry.hash)
        terms = conn.exec_driver_sql("SELECT term, chain_seq FROM decision_terms").all()
        assert terms == [(ACTION_TERM + "reschedule_timer", 1)]
        assert conn.exec_driver_sql("SELECT count(*) FROM decision_inputs").scalar() == 1
