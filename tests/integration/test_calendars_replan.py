"""Publishing a calendar re-plans the open timers on it, on SQLite and PostgreSQL: a running timer keeps the
working time it used and gets its deadline on the new version (a `reschedule_timer` action in the feed), a
paused timer stays paused and resumes on the new version, the step is one chain entry with the count and
versions; a re-plan left to a worker (the publisher crashed) fires a deadline now past at once, marked
late, exactly once; replicas re-planning at once move each timer once."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rulesvc.apikeys import Role
from rulesvc.decisions.replan import CalendarReplanner
from rulesvc.decisions.timer_service import TimerService
from rulesvc.sla.clock import VirtualClock
from rulesvc.storage import make_engine
from rulesvc.storage.timer_store import SqlTimerStore
from scheduler.poller import TimerPoller
from tests.integration.conftest import REPO, RULESETS, auth, make_settings
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
prepare = replanner._prepare
seen = []

def dying(view, **kwargs):
    seen.append(view.ticket_id)
    if len(seen) == 3:  # the second claim, half prepared: killed inside its transaction
        os.kill(os.getpid(), signal.SIGKILL)
    return prepare(view, **kwargs)

replanner._prepare = dying
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
