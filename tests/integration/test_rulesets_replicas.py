"""Hot reload across replicas: two real service processes on one PostgreSQL and Redis; a publication made
on one (through the CLI) decides on the other within a second. Also the database poll fallback (no Redis)
and that a decision in flight finishes on the book it started with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from rulesvc.apikeys import Role
from rulesvc.decisions.service import create_api_key
from rulesvc.masking import MaskPolicy
from rulesvc.model import Event
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import SqlStore, make_engine
from rulesvc.wiring.lifecycle import build_lifecycle
from tests.integration.conftest import (
    REDIS_URL,
    RULESETS,
    Server,
    cli_env,
    reset_pg,
    start_server,
    stop_server,
    unavailable,
)
from tests.integration.lifecycle_support import clear_lifecycle

EXPENSE = "expense-approval"
RAISED = (RULESETS / f"{EXPENSE}.yaml").read_text(encoding="utf-8").replace('"< 5000"', '"< 8000"')
RAISED_CASES = (
    (RULESETS / "cases" / f"{EXPENSE}.yaml")
    .read_text(encoding="utf-8")
    .replace("5000.01", "8000.01")
    .replace("amount: 5000,", "amount: 8000,")
    .replace("4999.99", "7999.99")
)


def _redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)


def rulesets_cli(args: list[str], server: Server, key: str) -> Any:
    """`rulesvc rulesets ARGS` against `server` (in this process: the CLI only speaks HTTP)."""
    from typer.testing import CliRunner

    from cli.rulesets import app

    return CliRunner().invoke(app, args, env={"RULESVC_URL": server.base_url, "RULESVC_KEY": key})


def decide(server: Server, key: str, event_id: str, amount: float) -> set[str]:
    body = {
        "event_id": event_id,
        "type": "ticket.created",
        "occurred_at": datetime.now(UTC).isoformat(),
        "ticket": {
            "kind": "expense",
            "id": f"E-{event_id}",
            "expense_type": "差旅费",
            "amount": amount,
            "applicant_rank": "部门经理",
            "applicant": "赵敏",
        },
    }
    response = httpx.post(
        f"{server.base_url}/v1/events", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=5
    )
    assert response.status_code == 200, response.text
    return {a["type"] for a in response.json()["actions"]}


@pytest.fixture
def replicas(pg_database: str, tmp_path: Path) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    _redis()
    reset_pg(pg_database)
    clear_lifecycle(pg_database)
    engine = make_engine(pg_database)
    store = SqlStore(engine)
    keys = {
        role.value: create_api_key(store, frozenset({role}), SystemClock(), role.value)[1]
        for role in (Role.EDITOR, Role.APPROVER, Role.INGEST)
    }
    engine.dispose()
    # Polling every 30 s: only the Redis notification can make the 1 s deadline.
    env = cli_env(
        pg_database,
        RULESVC_REDIS_URL=REDIS_URL,
        RULESVC_RULESET_POLL_SECONDS="30",
        RULESVC_WORKER_IN_SERVE="false",
    )
    servers: list[Server] = []
    try:
        with ThreadPoolExecutor(2) as pool:  # start both at once
            servers = list(pool.map(lambda i: start_server(env, tmp_path / f"replica-{i}.log"), range(2)))
        yield servers[0], servers[1], keys
    finally:
        for server in servers:
            stop_server(server)
        clear_lifecycle(pg_database)


def test_publish_on_one_replica_decides_on_the_other_within_a_second(
    replicas: tuple[Server, Server, dict[str, str]], tmp_path: Path
) -> None:
    first, second, keys = replicas
    assert decide(second, keys["ingest"], "before", 6000) == {"assign"}

    ruleset, cases = tmp_path / f"{EXPENSE}.yaml", tmp_path / "cases" / f"{EXPENSE}.yaml"
    cases.parent.mkdir()
    ruleset.write_text(RAISED, encoding="utf-8")
    cases.write_text(RAISED_CASES, encoding="utf-8")
    pushed = rulesets_cli(
        ["push", str(ruleset), "--cases", str(cases), "--reason", "门槛 8000"], first, keys["editor"]
    )
    assert pushed.exit_code == 0, pushed.output
    draft_id = pushed.stdout.split()[1]
    for args, key in (
        (["submit", EXPENSE, draft_id], keys["editor"]),
        (["approve", EXPENSE, draft_id, "--comment", "同意"], keys["approver"]),
    ):
        done = rulesets_cli(args, first, key)
        assert done.exit_code == 0, done.output
    published = rulesets_cli(["publish", EXPENSE, draft_id], first, keys["approver"])
    assert published.exit_code == 0 and "已发布 expense-approval v2，" in published.output, published.output

    started = time.monotonic()
    attempt = 0
    while decide(second, keys["ingest"], f"after-{attempt}", 6000) != {"auto_approve", "trigger_payment"}:
        attempt += 1
        assert time.monotonic() - started < 1.0, "the other replica still decides on version 1 after 1 s"
        time.sleep(0.02)
    assert decide(first, keys["ingest"], "on-first", 6000) == {"auto_approve", "trigger_payment"}


def test_database_poll_without_redis_and_in_flight_books(sqlite_url: str) -> None:
    """Two registries on one database, no Redis: the second sees a publication by polling; a book taken
    before the swap keeps deciding on the old version."""
    engines = [make_engine(sqlite_url) for _ in range(2)]
    clock, masking = SystemClock(), MaskPolicy.build({}, {})
    first = build_lifecycle(engines[0], RULESETS, clock, masking, poll_seconds=0.1)
    second = build_lifecycle(engines[1], RULESETS, clock, masking, poll_seconds=0.1)
    try:
        event = Event("e1", "ticket.created", datetime.now(UTC), _ticket(6000))
        in_flight = second.book.book_for(event)
        service = first.service
        draft = service.create_draft("editor", EXPENSE, RAISED, "门槛 8000", {EXPENSE: RAISED_CASES})
        service.submit("editor", EXPENSE, draft.draft_id)
        service.approve("approver", EXPENSE, draft.draft_id, "同意")
        service.publish("approver", EXPENSE, draft.draft_id)
        started = time.monotonic()
        while second.book.versions()[EXPENSE] != 2:
            assert time.monotonic() - started < 1.0, "the poll did not pick up the publication"
            time.sleep(0.02)
        later = Event("e2", "ticket.created", datetime.now(UTC), _ticket(6000))
        assert _types(second.book.evaluate(later)) == {"auto_approve", "trigger_payment"}
        assert _types(in_flight.evaluate(event)) == {"assign"}  # started on v1, finishes on v1
    finally:
        for lifecycle in (first, second):
            lifecycle.close()
        for engine in engines:
            engine.dispose()


def _ticket(amount: float) -> dict[str, Any]:
    from decimal import Decimal

    return {
        "kind": "expense",
        "id": "E-1",
        "expense_type": "差旅费",
        "amount": Decimal(str(amount)),
        "applicant_rank": "部门经理",
        "applicant": "赵敏",
    }


def _types(decision: Any) -> set[str]:
    return {a.type for a in decision.actions}
