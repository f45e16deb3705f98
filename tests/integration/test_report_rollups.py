"""The reports read from per-day roll-ups (PostgreSQL: `rulesvc.storage.report_rollups`) equal the same
reports read from the facts of their whole period (the database's statements and `from_facts`), while
decisions arrive on days already closed: a day rolled up and then receiving more decisions (its roll-ups are
dropped and rolled again), decisions of today (read live, with their predecessors on rolled days), periods
ending at a midnight or at any decision. SQLite reads every report live: the same assertions hold there."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from api.app import create_app
from rulesvc.decisions.service import Evaluator
from rulesvc.settings import Settings
from rulesvc.storage.fact_tables import DecisionFactRow
from rulesvc.storage.report_rollups import closed_before
from rulesvc.wiring.ops import report_rollups
from tests.integration.conftest import auth, event
from tests.integration.test_report_aggregation import ASKED, END, START, python, seed
from tests.integration.timer_support import SettableClock

DAY1 = datetime.fromisoformat("2026-11-20T10:00:00+08:00")  # after every event of `seed`
DAY2 = datetime.fromisoformat("2026-11-21T12:00:00+08:00")
DAY3 = datetime.fromisoformat("2026-11-22T09:00:00+08:00")


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(DAY1)


@pytest.fixture
def app(settings: Settings, book: Evaluator, clock: SettableClock) -> FastAPI:
    return create_app(settings, book=book, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def rolled_days(engine: Engine) -> set[date]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT day FROM report_rollup_days WHERE part = 'facts'")).scalars())


def periods(engine: Engine) -> list[Any]:
    """Every report of `ASKED` over [START, END), to each midnight after DAY1, and to each decision."""
    with Session(engine) as session:
        times = session.scalars(select(DecisionFactRow.decided_at).order_by(DecisionFactRow.chain_seq)).all()
    ends = [END, *(datetime.fromisoformat(f"2026-11-{d}T00:00:00+08:00") for d in (21, 22, 23, 30))]
    ends += [at for at in times if at < datetime.now(UTC) - timedelta(days=1)]  # cuts inside rolled days
    return [replace(asked, end=end) for asked in ASKED for end in ends]


def assert_rolled_as_live(app: FastAPI) -> None:
    service, engine = app.state.runtime.service, app.state.runtime.engine
    store = service.store
    for asked in periods(engine):
        [answer] = service.ticket_reports([asked])
        assert answer == python(engine, asked), asked
        if engine.dialect.name == "postgresql":
            store.rollups = False
            try:
                assert answer == store.ticket_report(asked), asked
            finally:
                store.rollups = True
    hits = service.rule_hits(START, END)
    store.rollups = False
    try:
        assert hits == service.rule_hits(START, END)
    finally:
        store.rollups = engine.dialect.name == "postgresql"
    assert any(g["hits"] for g in hits["groups"])


def post(client: TestClient, ingest: str, body: dict[str, Any], occurred_at: datetime) -> None:
    body["occurred_at"] = occurred_at.isoformat()
    answer = client.post("/v1/events", json=body, headers=auth(ingest))
    assert answer.status_code == 200, answer.text


def test_rolled_up_days_answer_as_the_facts_do_while_decisions_arrive(
    app: FastAPI, client: TestClient, keys: dict[str, str], clock: SettableClock
) -> None:
    engine: Engine = app.state.runtime.engine
    pg = engine.dialect.name == "postgresql"
    seed(client, keys["ingest"])
    assert_rolled_as_live(app)  # most days not rolled up: the reports read the facts (rolling a day each)
    job = report_rollups(engine)
    if job is not None:  # the worker's job: every closed day, DAY1 and those after it (without decisions)
        job()
        assert {DAY1.date(), DAY3.date()} <= rolled_days(engine)
        assert_rolled_as_live(app)

    # a closed day already rolled up receives decisions: the loan moves on, an expense claim grows
    clock.at = DAY3
    loan = event("loan-4", "loan", id="L-1", stage="复审", owner="经理1")
    loan["type"] = "ticket.updated"
    post(client, keys["ingest"], loan, DAY3 - timedelta(hours=1))
    post(
        client,
        keys["ingest"],
        event("exp-5", "expense", id="E-exp-0", amount=6000),
        DAY3 - timedelta(hours=2),
    )
    if pg:
        assert DAY3.date() not in rolled_days(engine) and DAY1.date() in rolled_days(engine)
    assert_rolled_as_live(app)

    # an earlier closed day receives the decisions of new tickets
    clock.at = DAY2
    post(client, keys["ingest"], event("exp-6", "expense", amount=300), DAY2 - timedelta(days=3))
    post(client, keys["ingest"], event("loan-r9", "loan", region="北京朝阳", stage="初审"), DAY2)
    assert_rolled_as_live(app)

    # today's decisions (read live) after those of rolled days: the same tickets once more
    clock.at = datetime.now(UTC)
    loan = event("loan-5", "loan", id="L-1", stage="终审", owner="经理0")
    loan["type"] = "ticket.updated"
    post(client, keys["ingest"], loan, clock.at - timedelta(minutes=5))
    post(client, keys["ingest"], event("exp-7", "expense", id="E-exp-0", amount=100), clock.at)
    post(client, keys["ingest"], event("exp-8", "expense", id="E-exp-6", amount=9000), clock.at)
    assert_rolled_as_live(app)


def test_the_worker_rolls_up_every_closed_day_once(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    seed(client, keys["ingest"])
    engine: Engine = app.state.runtime.engine
    job = report_rollups(engine)
    if engine.dialect.name != "postgresql":
        assert job is None  # SQLite reads the reports live
        return
    assert job is not None
    job()  # (the app's own worker may be rolling some of them at the same time)
    closed = closed_before(datetime.now(UTC))
    days = {DAY1.date() + timedelta(days=n) for n in range((closed - DAY1.date()).days)}
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT part, day FROM report_rollup_days")).all()
    assert {(part, day) for part, day in stored} == {
        (p, d) for p in ("facts", "rules", "field:kind") for d in days
    }
    assert job() == 0
    assert_rolled_as_live(app)
