"""Identical events racing each other produce exactly one decision (and one set of actions)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import text

from rulesvc.service import DecisionService, EventOutcome, Evaluator
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import SqlStore, make_engine
from tests.integration.conftest import (
    cli_env,
    event,
    make_settings,
    reset_pg,
    run_cli,
    start_server,
    stop_server,
)

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
        DecisionService(SqlStore(e), SqlStore(e), book, SystemClock(), settings.mask_policy()) for e in engines
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


def test_racing_http_posts_against_postgresql(pg_database: str, tmp_path: Path) -> None:
    """A real `rulesvc serve --workers 2` on PostgreSQL, hit by concurrent identical POSTs."""
    reset_pg(pg_database)
    env = cli_env(pg_database)
    key = run_cli(["keys", "create", "--role", "ingest"], env).stdout.strip().splitlines()[-1]
    server = start_server(env, tmp_path / "serve.log", workers=2)
    body = event("race-http")

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {key}"}
            return await asyncio.gather(*(client.post("/v1/events", json=body, headers=headers) for _ in range(24)))

    try:
        responses = asyncio.run(fire())
    finally:
        stop_server(server)
    assert {r.status_code for r in responses} == {200}
    bodies = [r.json() for r in responses]
    assert len({b["decision_id"] for b in bodies}) == 1
    assert counts(pg_database, "race-http") == (1, len(bodies[0]["actions"]), 1)
