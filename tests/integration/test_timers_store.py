"""Durable SLA timers on SQLite and PostgreSQL: firing, stopping, pausing, idempotency, lateness, figures,
the claim's index plan and exactly-once firing under concurrent pollers."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from rulesvc.decisions.service import verify_store
from rulesvc.decisions.timer_service import TimerService
from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from rulesvc.sla.clock import VirtualClock
from rulesvc.sla.reports import sla_report
from rulesvc.storage import SqlStore, make_engine, migrate
from rulesvc.storage.timer_store import SqlTimerStore
from tests.integration.conftest import RULESETS
from tests.integration.timer_support import Events, complaint, pg_url, timer_url  # noqa: F401

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
BOOK = RuleBook.load([RULESETS])
MASKING = Settings().mask_policy()


class Env:
    def __init__(self, url: str, start: datetime = T0) -> None:
        self.engine = make_engine(url)
        migrate(self.engine)
        self.clock = VirtualClock(start)
        self.store = SqlTimerStore(self.engine)
        self.service = TimerService(self.store, BOOK, self.clock, MASKING)
        self.events = Events(self.engine, BOOK)
        self.feed = SqlStore(self.engine)

    def poll_at(self, at: datetime) -> int:
        self.clock.set(at)
        return self.service.fire_due(100).decisions

    def actions(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.action_text) for r in self.feed.list_actions(0, 1000)]

    def types(self) -> list[str]:
        return [a["type"] for a in self.actions()]


@pytest.fixture
def env(timer_url: str) -> Iterator[Env]:  # noqa: F811
    environment = Env(timer_url)
    yield environment
    environment.engine.dispose()


def test_not_accepted_warns_at_90_minutes_and_escalates_at_2_hours_once(env: Env) -> None:
    env.events.send(complaint("c1", "C-1", T0), T0)
    assert env.poll_at(T0 + timedelta(minutes=89)) == 0
    assert env.poll_at(T0 + timedelta(minutes=90)) == 1
    assert env.poll_at(T0 + timedelta(minutes=100)) == 0
    assert env.poll_at(T0 + timedelta(hours=2)) == 1
    assert env.poll_at(T0 + timedelta(hours=5)) == 0
    start, notify, escalate = env.actions()
    assert start["type"] == "start_timer" and start["due_at"] == "2026-11-02T11:00:00+08:00"
    assert notify["type"] == "notify" and notify["channels"] == ["sms", "email", "in_app"]
    assert notify["fired_by"] == {
        "timer": "首次响应",
        "point": "预警",
        "due_at": "2026-11-02T10:30:00+08:00",
        "late_by": 0.0,
    }
    assert escalate["type"] == "escalate" and escalate["to"] == "supervisor"
    assert verify_store(env.feed).ok
    [figure] = env.store.sla_records(T0, T0 + timedelta(days=1))
    assert (figure.outcome, figure.stopped_at, figure.ruleset) == ("breached", None, "complaint-sla")


def test_a_ticket_with_a_200_character_id_still_fires(env: Env) -> None:
    """The fired point's event id (`timer:<ticket>:<timer>:<point>`) would outgrow the 200 characters an
    event id may have: it is then shortened to a digest, still one per point, so polls keep firing."""
    ticket = "C-" + "长" * 198
    env.events.send(complaint("long", ticket, T0), T0)
    assert env.poll_at(T0 + timedelta(minutes=90)) == 1
    assert env.poll_at(T0 + timedelta(hours=2)) == 1
    assert env.poll_at(T0 + timedelta(hours=3)) == 0
    assert env.types() == ["start_timer", "notify", "escalate"]
    with env.engine.connect() as conn:
        ids = [
            r[0] for r in conn.execute(text("SELECT event_id FROM decisions WHERE event_id LIKE 'timer:%'"))
        ]
    assert len(ids) == 2 and len(set(ids)) == 2 and all(len(i) <= 200 for i in ids)
    assert verify_store(env.feed).ok


def test_accepted_after_one_hour_fires_nothing_and_meets_the_sla(env: Env) -> None:
    env.events.send(complaint("c1", "C-1", T0), T0)
    env.events.send(
        complaint("c2", "C-1", T0 + timedelta(hours=1), "ticket.accepted"),
        T0 + timedelta(hours=1),
    )
    assert env.poll_at(T0 + timedelta(hours=3)) == 0
    assert env.types() == ["start_timer", "cancel_timer"]
    [figure] = env.store.sla_records(T0, T0 + timedelta(days=1))
    assert figure.outcome == "met" and figure.remaining == timedelta(hours=1)
    assert env.store.pending_timers() == 0


def test_late_acceptance_closes_the_breach_and_the_report_shows_it(env: Env) -> None:
    env.events.send(complaint("c1", "C-1", T0), T0)
    env.events.send(complaint("d1", "C-2", T0), T0)
    env.events.send(
        complaint("d2", "C-2", T0 + timedelta(minutes=30), "ticket.accepted"), T0 + timedelta(minutes=30)
    )
    env.poll_at(T0 + timedelta(hours=2))
    late = T0 + timedelta(hours=2, minutes=25)
    env.events.send(complaint("c2", "C-1", late, "ticket.accepted"), late)
    report = sla_report(env.store, T0, T0 + timedelta(days=1), ("ruleset",))
    assert report["total"] | {"avg_remaining_seconds": None} == {
        "total": 2,
        "met": 1,
        "breached": 1,
        "attainment": 0.5,
        "open_breaches": 0,
        "avg_breach_seconds": 1500.0,
        "max_breach_seconds": 1500.0,
        "avg_remaining_seconds": None,
        "provisional": 0,
    }
    assert report["groups"][0]["key"] == {"ruleset": "complaint-sla"}


def test_pause_and_resume_move_the_points_on_the_calendar(env: Env) -> None:
    env.events.send(complaint("c1", "C-1", T0), T0)
    paused_at, resumed_at = T0 + timedelta(minutes=30), T0 + timedelta(hours=3)
    env.events.send(complaint("c2", "C-1", paused_at, "ticket.paused"), paused_at)
    assert env.poll_at(T0 + timedelta(hours=2, minutes=30)) == 0
    env.events.send(complaint("c3", "C-1", resumed_at, "ticket.resumed"), resumed_at)
    resume = env.actions()[-1]
    assert resume["type"] == "resume_timer" and resume["due_at"] == "2026-11-02T13:30:00+08:00"
    assert env.poll_at(T0 + timedelta(hours=3, minutes=59)) == 0
    assert env.poll_at(T0 + timedelta(hours=4)) == 1  # 预警 at 12:00+1h = 13:00 Shanghai
    assert env.poll_at(T0 + timedelta(hours=4, minutes=30)) == 1
    assert env.types()[-2:] == ["notify", "escalate"]


def test_same_event_twice_starts_one_timer(env: Env) -> None:
    first = env.events.send(complaint("c1", "C-1", T0), T0)
    again = env.events.send(complaint("c1", "C-1", T0), T0 + timedelta(seconds=5))
    assert not again.created and again.decision_id == first.decision_id
    assert env.poll_at(T0 + timedelta(hours=3)) == 2
    assert env.types() == ["start_timer", "notify", "escalate"]


def test_complaint_reported_three_hours_late_fires_at_once_marked_late(env: Env) -> None:
    arrived = T0 + timedelta(hours=3)
    env.events.send(complaint("c1", "C-1", T0), arrived)
    assert env.poll_at(arrived + timedelta(seconds=1)) == 2
    notify, escalate = env.actions()[1:]
    assert notify["fired_by"]["late_by"] == 5401.0 and escalate["fired_by"]["late_by"] == 3601.0


def test_claim_reads_the_head_of_the_due_time_index(pg_url: str) -> None:  # noqa: F811
    engine = make_engine(pg_url)
    migrate(engine)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tickets (ticket_id, kind, snapshot, group_name, updated_at) "
                    "SELECT 'T-' || i, 'complaint', '{}', '', now() FROM generate_series(1, 50000) i"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO timers (ticket_id, name, generation, calendar, rule, status, started_at,"
                    " duration_us, warnings, anchor_at, consumed_us, fired, due_at, next_fire_at, next_point,"
                    " updated_at) SELECT 'T-' || i, 't', 1, '24x7', 'x/y', 'running', now(), 1, '[]', now(),"
                    " 0, '[]', now() + i * interval '1 second', now() + i * interval '1 second', 'due', now()"
                    " FROM generate_series(1, 50000) i"
                )
            )
            conn.execute(text("ANALYZE timers"))
            conn.execute(text("ANALYZE tickets"))
        plan = SqlTimerStore(engine).claim_plan(datetime.now(UTC) + timedelta(seconds=30), 100)
    finally:
        engine.dispose()
    assert "Index Scan using ix_timers_next_fire_at on timers" in plan, plan
    assert "Seq Scan on timers" not in plan, plan
    assert "LockRows" in plan, plan


def test_concurrent_pollers_fire_every_point_exactly_once(pg_url: str) -> None:  # noqa: F811
    seed = Env(pg_url)
    for i in range(200):
        seed.events.send(complaint(f"c{i}", f"C-{i}", T0 + timedelta(seconds=i % 7)), T0)
    seed.engine.dispose()
    envs = [Env(pg_url, start=T0 + timedelta(hours=3)) for _ in range(4)]
    barrier = threading.Barrier(len(envs))

    def run(environment: Env) -> None:
        barrier.wait()
        while environment.service.fire_due(10).tickets:
            pass

    threads = [threading.Thread(target=run, args=(e,)) for e in envs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    check = envs[0]
    fired = Counter(
        (a["type"], r.ticket_id)
        for r in check.feed.list_actions(0, 10_000)
        for a in [orjson.loads(r.action_text)]
    )
    assert sum(n for (t, _), n in fired.items() if t == "notify") == 200
    assert sum(n for (t, _), n in fired.items() if t == "escalate") == 200
    assert max(fired.values()) == 1
    assert verify_store(check.feed).ok
    for environment in envs:
        environment.engine.dispose()
