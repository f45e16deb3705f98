"""Ticket state under the chain: an intruder edits a ticket's snapshot, its timer journal or a timer's anchor
directly in the database (plain SQL, both databases); the timer does not fire on the forged state, the next
event on the ticket is refused, the refusal is an alert and a metric, and `verify` names the ticket.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from rulesvc.audit.evidence import EvidenceError, refusals
from rulesvc.decisions.service import verify_all
from rulesvc.decisions.timer_service import TimerService
from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from rulesvc.storage import SqlStore, make_engine
from rulesvc.storage.evidence_reads import SqlEvidenceReader
from rulesvc.storage.timer_store import SqlTimerStore
from tests.integration.conftest import RULESETS
from tests.integration.timer_support import Events, SettableClock, complaint, timer_url  # noqa: F401

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
BOOK = RuleBook.load([RULESETS])


@dataclass
class Setup:
    engine: Engine
    events: Events
    clock: SettableClock
    timers: TimerService

    def fire(self, at: datetime) -> int:
        self.clock.at = at
        return self.timers.fire_due().refused

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(statement), params)

    def feed(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.action_text) for r in SqlStore(self.engine).list_actions(0, 1000)]

    def problems(self) -> set[tuple[str, str, str]]:
        return {(p.table, p.row, p.reason) for p in SqlEvidenceReader(self.engine).ticket_problems()}

    def verify(self) -> dict[str, Any]:
        store = SqlStore(self.engine, group_commit=False)
        return verify_all(store, SqlEvidenceReader(self.engine)).to_json()

    def shift_anchor(self, hours: int) -> None:
        if self.engine.dialect.name == "postgresql":
            self.sql(
                f"UPDATE timers SET anchor_at = anchor_at - interval '{hours} hours', "
                f"next_fire_at = next_fire_at - interval '{hours} hours' WHERE ticket_id = 'C-1'"
            )
        else:
            self.sql(
                f"UPDATE timers SET anchor_at = datetime(anchor_at, '-{hours} hours'), "
                f"next_fire_at = datetime(next_fire_at, '-{hours} hours') WHERE ticket_id = 'C-1'"
            )


@pytest.fixture
def setup(timer_url: str) -> Iterator[Setup]:  # noqa: F811
    engine = make_engine(timer_url)
    events = Events(engine, BOOK)
    events.send(complaint("c1", "C-1", T0), T0)
    clock = SettableClock(T0)
    timers = TimerService(SqlTimerStore(engine), BOOK, clock, Settings().mask_policy())
    yield Setup(engine, events, clock, timers)
    engine.dispose()


def escalations(setup: Setup) -> list[dict[str, Any]]:
    return [a for a in setup.feed() if a["type"] == "escalate"]


def test_untouched_tickets_fire_and_verify(setup: Setup) -> None:
    assert setup.problems() == set()
    assert setup.fire(T0 + timedelta(minutes=90)) == 0
    setup.events.send(complaint("c1-again", "C-1", T0), T0 + timedelta(minutes=100))
    assert setup.fire(T0 + timedelta(hours=2)) == 0
    assert len(escalations(setup)) == 1
    assert setup.problems() == set()
    assert setup.verify()["ok"] is True


def test_forged_snapshot_is_not_fired_on_and_refuses_events(setup: Setup) -> None:
    setup.sql("UPDATE tickets SET snapshot = replace(snapshot, '王五', '张冒名') WHERE ticket_id = 'C-1'")
    before = refusals().get("tickets", 0)
    assert setup.fire(T0 + timedelta(hours=2)) == 1
    assert escalations(setup) == []
    assert refusals().get("tickets", 0) == before + 1
    with pytest.raises(EvidenceError) as refused:
        setup.events.send(complaint("c2", "C-1", T0), T0 + timedelta(hours=2))
    assert refused.value.code == "audit.evidence_mismatch" and refused.value.table == "tickets"
    assert setup.problems() == {("tickets", "C-1", "state_mismatch")}
    result = setup.verify()
    assert result["ok"] is False
    assert {"table": "tickets", "row": "C-1", "reason": "state_mismatch"}.items() <= result["problems"][
        0
    ].items()


def test_anchor_moved_back_does_not_fire_early(setup: Setup) -> None:
    setup.shift_anchor(3)
    assert setup.fire(T0 + timedelta(minutes=1)) == 1
    assert escalations(setup) == []
    assert setup.problems() == {("tickets", "C-1", "state_mismatch")}


def test_forged_timeline_is_refused(setup: Setup) -> None:
    with setup.engine.connect() as conn:
        timeline = conn.execute(text("SELECT timeline FROM tickets WHERE ticket_id = 'C-1'")).scalar_one()
    assert timeline not in ("", "{}")
    setup.sql("UPDATE tickets SET timeline = '{}' WHERE ticket_id = 'C-1'")
    with pytest.raises(EvidenceError):
        setup.events.send(complaint("c2", "C-1", T0), T0 + timedelta(minutes=5))
    assert setup.problems() == {("tickets", "C-1", "state_mismatch")}


def test_seal_removed_or_state_put_back_is_reported(setup: Setup) -> None:
    with setup.engine.connect() as conn:
        old = conn.execute(
            text("SELECT snapshot, timeline, seal_seq FROM tickets WHERE ticket_id = 'C-1'")
        ).one()
    setup.events.send(
        {**complaint("c2", "C-1", T0), "ticket": {"kind": "complaint", "id": "C-1", "owner": "李四"}},
        T0 + timedelta(minutes=5),
    )
    assert setup.problems() == set()
    # the older state with its (genuine) older seal: consistent in itself, but no longer the newest
    setup.sql(
        "UPDATE tickets SET snapshot = :s, timeline = :t, seal_seq = :q WHERE ticket_id = 'C-1'",
        s=old.snapshot,
        t=old.timeline,
        q=old.seal_seq,
    )
    assert ("tickets", "C-1", "seal_stale") in setup.problems()
    setup.sql("UPDATE tickets SET seal_seq = NULL WHERE ticket_id = 'C-1'")
    assert setup.fire(T0 + timedelta(hours=2)) == 1
    assert ("tickets", "C-1", "seal_missing") in setup.problems()


def test_deleted_ticket_is_reported(setup: Setup) -> None:
    setup.sql("DELETE FROM timers WHERE ticket_id = 'C-1'")
    setup.sql("DELETE FROM tickets WHERE ticket_id = 'C-1'")
    assert setup.problems() == {("tickets", "C-1", "ticket_missing")}


def test_bulk_loaded_tickets_are_sealed(setup: Setup) -> None:
    store = SqlTimerStore(setup.engine)
    store.import_timers([("C-bulk", "complaint", {"id": "C-bulk", "owner": "赵六"})], [], T0)
    assert setup.problems() == set()
    setup.sql("UPDATE tickets SET kind = 'loan' WHERE ticket_id = 'C-bulk'")
    assert setup.problems() == {("tickets", "C-bulk", "state_mismatch")}
