"""Identical events racing each other produce exactly one decision (and one set of actions)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from rulesvc.decisions.service import DecisionService, Evaluator, EventOutcome
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import SqlStore, make_engine
from tests.integration.conftest import event, make_settings

RACERS = 12


def counts(url: str, event_id: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            decisions = conn.execute(
                text("SELECT count(*) FROM decisions WHERE event_id = :e"), {"e": event_id}
            ).scalar_one()
            actions = conn.execute(text("SELECT count(*) FROM actions")).scalar_one()
            entries = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
        return int(decisions), int(actions), int(entries)
    finally:
        engine.dispose()


def test_racing_services_store_one_decision(database_url: str, book: Evaluator) -> None:
    """Two service instances (as two processes would have), each with its own pool, race on one event."""
    settings = make_settings(database_url)
    engines = [make_engine(database_url) for _ in range(2)]
    services = [
        DecisionService(SqlStore(e), SqlStore(e), book, SystemClock(), settings.mask_policy())
        for e in engines
    ]
    body = event("race-1")
    barrier = threading.Barrier(RACERS)

    def racer(i: int) -> EventOutcome:
        barrier.wait()
        return services[i % 2].handle_event(body)

    try:
        with ThreadPoolExecutor(RACERS) as pool:
            outcomes = list(pool.map(racer, range(RACERS)))
    finally:
        for engine in engines:
            engine.dispose()
    assert len({o.decision_id for o in outcomes}) == 1
    assert sum(o.created for o in outcomes) == 1
    assert all(o.actions == outcomes[0].actions for o in outcomes)
    assert counts(database_url, "race-1") == (1, len(outcomes[0].actions), 1)
