"""Publishing a calendar re-plans the open timers on it, on SQLite and PostgreSQL: a running timer keeps the
working time it used and gets its deadline on the new version (a `reschedule_timer` action in the feed), a
paused timer stays paused and resumes on the new version, the step is one chain entry with the count and
versions; a re-plan left to a worker (the publisher crashed) fires a deadline now past at once, marked
late, exactly once; replicas re-planning at once move each timer once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from rulesvc.apikeys import Role
from rulesvc.decisions.replan import CalendarReplanner
from rulesvc.decisions.timer_service import TimerService
from rulesvc.sla.clock import VirtualClock
from rulesvc.storage import make_engine
from rulesvc.storage.timer_store import SqlTimerStore
from scheduler.poller import TimerPoller
from tests.integration.conftest import REPO, RULESETS, auth, engine_of, make_settings
from tests.integration.lifecycle_support import lifecycle_client, role_keys

CN = (RULESETS / "calendars" / "cn.yaml").read_text(encoding="utf-8")
FRIDAY = datetime.fromisoformat("2027-02-19T16:00:00+08:00")
SATURDAY_WORKED = CN.replace("workdays:\n", 'workdays:\n  2027-02-20: "春节调休"\n', 1)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(FRIDAY)


@pytest.fixture
def client(database_url: str, clock: VirtualClock) -> Iterator[TestClient]:
    with lifecycle_client(database_url, clock) as test_client:
        yield test_client


@pytest.fixture
def app(client: TestClient) -> FastAPI:
    built: FastAPI = client.app  # type: ignore[assignment]
    return built


@pytest.fixture
def keys(client: TestClient) -> dict[str, str]:
    roles = {
        "editor": {Role.EDITOR},
        "approver": {Role.APPROVER},
        "auditor": {Role.AUDITOR},
        "ingest": {Role.INGEST},
    }
    return role_keys(client, roles, FRIDAY)


def loan_event(event_id: str, ticket: str, occurred_at: datetime, type_: str = "ticket.created") -> Any:
    return {
        "event_id": event_id,
        "type": type_,
        "occurred_at": occurred_at.isoformat(),
        "ticket": {
            "kind": "loan",
            "id": ticket,
            "region": "上海浦东",
            "amount": 300000,
            "credit_rating": "A",
            "owner": "周八",
            "stage": "初审",
        },
    }


def send(client: TestClient, keys: dict[str, str], *args: Any) -> list[dict[str, Any]]:
    response = client.post("/v1/events", json=loan_event(*args), headers=auth(keys["ingest"]))
    assert response.status_code == 200, response.text
    actions: list[dict[str, Any]] = response.json()["actions"]
    return actions


def approved_draft(client: TestClient, keys: dict[str, str], text: str) -> str:
    draft = client.post(
        "/v1/calendars/cn/drafts",
        content=text.encode("utf-8"),
        params={"reason": "2027 春节调休"},
        headers={**auth(keys["editor"]), "Content-Type": "application/yaml"},
    )
    assert draft.status_code == 201, draft.text
    draft_id: str = draft.json()["draft_id"]
    for key, action in (("editor", "submit"), ("approver", "approve")):
        done = client.post(f"/v1/calendars/cn/drafts/{draft_id}/{action}", json={}, headers=auth(keys[key]))
        assert done.status_code == 200, done.text
    return draft_id


def publish(client: TestClient, keys: dict[str, str], draft_id: str) -> dict[str, Any]:
    published = client.post(
        f"/v1/calendars/cn/drafts/{draft_id}/publish", json={}, headers=auth(keys["approver"])
    )
    assert published.status_code == 200, published.text
    result: dict[str, Any] = published.json()
    return result


def reschedules(client: TestClient, keys: dict[str, str]) -> list[dict[str, Any]]:
    records = client.get("/v1/actions?limit=1000", headers=auth(keys["ingest"])).json()["records"]
    return [
        {"ticket_id": r["ticket_id"], **r["action"]}
        for r in records
        if r["action"]["type"] == "reschedule_timer"
    ]


def test_publishing_replans_running_and_paused_timers(
    client: TestClient, keys: dict[str, str], clock: VirtualClock
) -> None:
    [started] = [a for a in send(client, keys, "a1", "L-A", FRIDAY) if a["type"] == "start_timer"]
    assert started["due_at"] == "2027-02-22T11:00:00+08:00"  # 2 h on Friday, 2 h on Monday
    send(client, keys, "b1", "L-B", FRIDAY)
    clock.advance(timedelta(hours=1))
    send(client, keys, "b2", "L-B", FRIDAY + timedelta(hours=1), "ticket.paused")  # 1 h used

    result = publish(client, keys, approved_draft(client, keys, SATURDAY_WORKED))
    replanned = result["replanned"]
    assert replanned["to_version"] == 2 and replanned["tickets"] == 2 and replanned["moved"] == 1
    [example] = replanned["examples"]
    assert example["ticket_id"] == "L-A" and example["timer"] == "信贷初审"
    assert example["due_at"] == "2027-02-20T11:00:00+08:00"  # the 2 h left now on the make-up Saturday
    assert example["previous_due_at"] == "2027-02-22T11:00:00+08:00"
    [moved] = reschedules(client, keys)
    assert moved["ticket_id"] == "L-A" and moved["due_at"] == "2027-02-20T11:00:00+08:00"
    assert moved["previous_due_at"] == "2027-02-22T11:00:00+08:00" and moved["calendar_version"] == 2

    # The paused timer stayed paused; resumed on Saturday it counts its 3 h left on the new version.
    saturday = datetime.fromisoformat("2027-02-20T09:00:00+08:00")
    clock.set(saturday)
    resumed = send(client, keys, "b3", "L-B", saturday, "ticket.resumed")
    assert [a["due_at"] for a in resumed if a["type"] == "resume_timer"] == ["2027-02-20T12:00:00+08:00"]

    history = client.get("/v1/calendars/cn/history", headers=auth(keys["auditor"])).json()["entries"]
    last = history[-1]
    assert last["step"] == "replanned" and last["moved"] == 1 and last["tickets"] == 2
    assert (last["from_version"], last["version"]) == (1, 2)
    assert client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"] is True
    # a later replay does not undo the re-plan: another event on the ticket keeps the new deadline
    send(client, keys, "a2", "L-A", saturday, "ticket.updated")
    assert reschedules(client, keys) == [moved]


def test_a_replan_left_to_the_workers_fires_past_deadlines_late_once(
    app: FastAPI, client: TestClient, keys: dict[str, str], clock: VirtualClock, database_url: str
) -> None:
    for index in range(6):
        send(client, keys, f"t{index}", f"L-{index}", FRIDAY)
    app.state.lifecycle.calendars.on_published = None  # the publisher dies before re-planning
    publish(client, keys, approved_draft(client, keys, SATURDAY_WORKED))
    assert reschedules(client, keys) == []
    clock.set(datetime.fromisoformat("2027-02-20T12:00:00+08:00"))  # the new deadline (11:00) is past

    book = app.state.lifecycle.book
    masking = make_settings(database_url).mask_policy()
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        replanners = [CalendarReplanner(SqlTimerStore(e), book, clock, masking, batch=2) for e in engines]
        replanners[0].lanes = 2  # a worker's two claim loops (RULESVC_REPLAN_LANES) beside another replica
        replanners[1].journal_only = True  # one plans from the timer rows, the other through the journals
        with ThreadPoolExecutor(2) as pool:  # two replicas' workers take it up at once
            results = list(pool.map(lambda r: r.replan("cn"), replanners))
        assert sum(r.moved for r in results) == 6
        moved = reschedules(client, keys)
        assert sorted(m["ticket_id"] for m in moved) == [f"L-{i}" for i in range(6)]  # each once
        assert all(m["late"] is True and m["due_at"] == "2027-02-20T11:00:00+08:00" for m in moved)

        timers = TimerService(SqlTimerStore(engines[0]), book, clock, masking)
        poller = TimerPoller(timers, batch=10, replanner=replanners[0])
        poller.poll()
        poller.poll()
    finally:
        for engine in engines:
            engine.dispose()
    records = client.get("/v1/actions?limit=1000", headers=auth(keys["ingest"])).json()["records"]
    fired = [r for r in records if r["action"].get("fired_by", {}).get("point") == "due"]
    assert sorted(r["ticket_id"] for r in fired if r["action"]["type"] == "notify") == [
        f"L-{i}" for i in range(6)
    ]
    assert all(r["action"]["fired_by"]["late_by"] == 3600 for r in fired)
    assert client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"] is True


KILLED_MID_REPLAN = """
import os, signal, sys
from pathlib import Path
from datetime import datetime
from rulesvc.decisions.replan import CalendarReplanner
from rulesvc.wiring.lifecycle import build_lifecycle
from rulesvc.settings import Settings
from rulesvc.sla.clock import VirtualClock
from rulesvc.storage import make_engine
from rulesvc.storage.timer_store import SqlTimerStore

url, rules, now = sys.argv[1:4]
engine = make_engine(url)
clock = VirtualClock(datetime.fromisoformat(now))
masking = Settings(database_url=url).mask_policy()
lifecycle = build_lifecycle(engine, Path(rules), clock, masking, bootstrap=False)
replanner = CalendarReplanner(SqlTimerStore(engine), lifecycle.book, clock, masking, batch=2)
give_way = replanner.give_way
seen = []

def dying():
    seen.append(1)
    if len(seen) == 3:  # the second claim, half planned: killed inside its transaction
        os.kill(os.getpid(), signal.SIGKILL)
    give_way()

replanner.give_way = dying
replanner.replan("cn")
"""


def test_killed_mid_replan_loses_no_timer_and_replans_none_twice(
    app: FastAPI, client: TestClient, keys: dict[str, str], clock: VirtualClock, database_url: str
) -> None:
    for index in range(6):
        send(client, keys, f"k{index}", f"L-{index}", FRIDAY)
    app.state.lifecycle.calendars.on_published = None  # re-planned by the process killed below
    publish(client, keys, approved_draft(client, keys, SATURDAY_WORKED))
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_REPLAN, database_url, str(RULESETS), clock.now().isoformat()],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(reschedules(client, keys)) == 2  # the first claim committed, the second was lost whole

    engine = make_engine(database_url)
    try:
        masking = make_settings(database_url).mask_policy()
        replanner = CalendarReplanner(
            SqlTimerStore(engine), app.state.lifecycle.book, clock, masking, batch=2
        )
        assert replanner.replan("cn").moved == 4
        assert replanner.replan("cn").moved == 0
    finally:
        engine.dispose()
    moved = reschedules(client, keys)
    assert sorted(m["ticket_id"] for m in moved) == [f"L-{i}" for i in range(6)]
    assert {m["due_at"] for m in moved} == {"2027-02-20T11:00:00+08:00"}
    assert client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"] is True


def sql(app: FastAPI, statement: str, **params: Any) -> list[Any]:
    with engine_of(app).begin() as conn:
        result = conn.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


def found_records(client: TestClient, keys: dict[str, str], ticket_id: str) -> list[dict[str, Any]]:
    found = client.get("/v1/decisions", params={"ticket_id": ticket_id}, headers=auth(keys["auditor"]))
    assert found.status_code == 200, found.text
    records: list[dict[str, Any]] = found.json()["records"]
    return records


def problems(client: TestClient, keys: dict[str, str]) -> set[tuple[str, str]]:
    result = client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()
    return {(p["table"], p["reason"]) for p in result.get("problems", [])}


def test_a_claim_is_one_record_and_entry_vouching_for_each_tickets_feed_row(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    for index in range(3):
        send(client, keys, f"c{index}", f"L-{index}", FRIDAY)
    before = sql(app, "SELECT count(*) FROM decisions")[0][0]
    replanned = publish(client, keys, approved_draft(client, keys, SATURDAY_WORKED))["replanned"]
    assert (replanned["tickets"], replanned["moved"], replanned["pending"]) == (3, 3, 0)

    # one record for the claim (not one per ticket), its feed rows each carrying their own ticket
    [(claim_id, record_text)] = sql(
        app, "SELECT decision_id, record FROM decisions WHERE event_id LIKE 'replan:%'"
    )
    assert sql(app, "SELECT count(*) FROM decisions")[0][0] == before + 1
    record = json.loads(record_text)
    assert record["event"]["type"] == "calendar.replanned"
    assert (record["event"]["from_versions"], record["event"]["to_version"]) == ([1], 2)
    assert sorted(record["action_tickets"]) == ["L-0", "L-1", "L-2"]
    moved = reschedules(client, keys)
    assert sorted(m["ticket_id"] for m in moved) == ["L-0", "L-1", "L-2"]
    # its one chain entry: the count, the versions, and the claimed tickets' new seals
    [(payload,)] = sql(app, "SELECT payload FROM audit_log WHERE subject = :d", d=claim_id)
    entry = json.loads(payload)
    assert (entry["moved"], entry["ticket_count"], entry["to_version"]) == (3, 3, 2)
    assert sorted(entry["tickets"]) == ["L-0", "L-1", "L-2"]
    # planned from the timer rows: the tickets' timelines were not rewritten (they still name v1)
    [(timeline,)] = sql(app, "SELECT timeline FROM tickets WHERE ticket_id = 'L-0'")
    assert json.loads(timeline)["calendars"] == {"cn": 1}
    # the ticket's history still says its timer was re-planned
    found = found_records(client, keys, "L-1")
    assert claim_id in [r["decision_id"] for r in found]
    start = found[-1]["decision_id"]
    timers = client.get(f"/v1/decisions/{start}/timers", headers=auth(keys["auditor"])).json()["timers"]
    marks = [m for t in timers for m in t["marks"] if m["kind"] == "rescheduled"]
    assert [(m["name"], m["decision_id"]) for m in marks] == [("2027-02-20T11:00:00+08:00", claim_id)]
    assert problems(client, keys) == set()

    # tampering with any feed row of the claim is detected: its action, its ticket, its existence
    sql(
        app,
        "UPDATE actions SET action = replace(action, '2027-02-20T11', '2027-02-27T11') WHERE ticket_id = 'L-0'",
    )
    assert ("actions", "action_mismatch") in problems(client, keys)
    sql(
        app,
        "UPDATE actions SET action = replace(action, '2027-02-27T11', '2027-02-20T11') WHERE ticket_id = 'L-0'",
    )
    assert problems(client, keys) == set()
    sql(app, "UPDATE actions SET ticket_id = 'L-9' WHERE ticket_id = 'L-1' AND decision_id = :d", d=claim_id)
    assert ("actions", "ticket_mismatch") in problems(client, keys)
    sql(app, "UPDATE actions SET ticket_id = 'L-1' WHERE ticket_id = 'L-9'")
    sql(app, "DELETE FROM actions WHERE ticket_id = 'L-2' AND decision_id = :d", d=claim_id)
    assert ("actions", "feed_count_mismatch") in problems(client, keys)


def test_the_calendar_version_a_timer_is_planned_on_is_sealed(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    send(client, keys, "s1", "L-S", FRIDAY)
    publish(client, keys, approved_draft(client, keys, SATURDAY_WORKED))
    assert sql(app, "SELECT calendar_version FROM timers WHERE ticket_id = 'L-S'") == [(2,)]
    assert problems(client, keys) == set()
    # set back to the old version (its deadline would follow v1 again): the ticket no longer matches its seal
    sql(app, "UPDATE timers SET calendar_version = 1 WHERE ticket_id = 'L-S'")
    assert ("tickets", "state_mismatch") in problems(client, keys)


def test_a_ticket_whose_state_does_not_match_its_seal_is_not_replanned(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    for index in range(3):
        send(client, keys, f"f{index}", f"L-{index}", FRIDAY)
    [(seal,)] = sql(app, "SELECT seal_seq FROM tickets WHERE ticket_id = 'L-1'")
    sql(app, "UPDATE tickets SET group_name = 'forged' WHERE ticket_id = 'L-1'")
    replanned = publish(client, keys, approved_draft(client, keys, SATURDAY_WORKED))["replanned"]
    # the others move; the forged one is neither re-planned nor re-sealed (its state stays found out)
    assert (replanned["tickets"], replanned["moved"]) == (2, 2)
    assert sorted(m["ticket_id"] for m in reschedules(client, keys)) == ["L-0", "L-2"]
    versions = dict(sql(app, "SELECT ticket_id, calendar_version FROM timers"))
    assert versions == {"L-0": 2, "L-1": 1, "L-2": 2}
    assert sql(app, "SELECT seal_seq FROM tickets WHERE ticket_id = 'L-1'") == [(seal,)]
    assert ("tickets", "state_mismatch") in problems(client, keys)


def test_a_publish_beyond_the_inline_budget_answers_at_once_and_the_workers_finish_exactly_once(
    app: FastAPI, client: TestClient, keys: dict[str, str], clock: VirtualClock, database_url: str
) -> None:
    for index in range(7):
        send(client, keys, f"w{index}", f"L-{index}", FRIDAY)
    hook = app.state.lifecycle.calendars.on_published
    replanner, lifecycle = hook.args[:2]
    replanner.batch = 2
    # the request re-plans 2 tickets itself
    app.state.lifecycle.calendars.on_published = partial(hook.func, replanner, lifecycle, 2)
    answer = publish(client, keys, approved_draft(client, keys, SATURDAY_WORKED))["replanned"]
    assert (answer["tickets"], answer["moved"], answer["pending"]) == (2, 2, 5)
    assert len(answer["examples"]) == 2 and len(reschedules(client, keys)) == 2
    assert answer["follow"] == "GET /v1/decisions?action_type=reschedule_timer"

    book = app.state.lifecycle.book
    masking = make_settings(database_url).mask_policy()
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        pollers = [
            TimerPoller(
                TimerService(SqlTimerStore(e), book, clock, masking),
                batch=10,
                replanner=CalendarReplanner(SqlTimerStore(e), book, clock, masking, batch=2),
            )
            for e in engines
        ]
        with ThreadPoolExecutor(2) as pool:  # two workers take up the rest at once
            list(pool.map(lambda p: p.poll(), pollers))
        assert sum(p.stats.replanned for p in pollers) == 5
        for poller in pollers:
            poller.poll()
        assert sum(p.stats.replanned for p in pollers) == 5
    finally:
        for engine in engines:
            engine.dispose()
    moved = reschedules(client, keys)
    assert sorted(m["ticket_id"] for m in moved) == [f"L-{i}" for i in range(7)]  # each exactly once
    assert sql(app, "SELECT count(*) FROM timers WHERE calendar_version < 2") == [(0,)]
    assert problems(client, keys) == set()
