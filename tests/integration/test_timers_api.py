"""SLA timers through the HTTP service: events start/pause/resume/stop timers in the same transaction as
their decision, a worker on a controllable clock fires them to the feed (long-polled) and a webhook, and
the admin and report routes (roles, errors, dead letters, SLA figures)."""

from __future__ import annotations

import codecs
import csv
import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from rulesvc.decisions.service import Evaluator
from rulesvc.delivery.webhooks import RetryPolicy
from rulesvc.sla.clock import VirtualClock
from scheduler.build import WorkerParts, build_worker
from scheduler.config import WorkerConfig
from tests.integration.conftest import auth, make_settings
from tests.integration.timer_support import Receiver, complaint, receiver, timer_url, wait_until  # noqa: F401

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def timer_app(timer_url: str, book: Evaluator, clock: VirtualClock) -> FastAPI:  # noqa: F811
    return create_app(make_settings(timer_url), book=book, clock=clock)


@pytest.fixture
def api(timer_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(timer_app) as client:
        yield client


@pytest.fixture
def worker(timer_url: str, book: Evaluator, clock: VirtualClock, timer_app: FastAPI) -> Iterator[WorkerParts]:  # noqa: F811
    parts = build_worker(
        timer_url,
        book,  # type: ignore[arg-type]
        make_settings(timer_url).mask_policy(),
        config=WorkerConfig(poll_interval=0.05, delivery_interval=0.05),
        retry=RetryPolicy(max_attempts=2, base_seconds=0.01, cap_seconds=0.02, timeout_seconds=2),
        clock=clock,
        notifier=timer_app.state.timers.notifier,
    )
    yield parts
    parts.worker.stop()


def post(api: TestClient, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/events", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_complaint_not_accepted_reaches_the_feed_and_a_webhook(
    api: TestClient,
    keys: dict[str, str],
    worker: WorkerParts,
    clock: VirtualClock,
    receiver: Receiver,  # noqa: F811
) -> None:
    created = api.post(
        "/v1/webhooks",
        json={"url": receiver.url, "kinds": ["complaint"], "action_types": ["notify", "escalate"]},
        headers=auth(keys["admin"]),
    )
    assert created.status_code == 201, created.text
    receiver.secret = created.json()["secret"]
    answer = post(api, keys["ingest"], complaint("c1", "C-1", T0))
    assert answer["actions"][0]["due_at"] == "2026-11-02T11:00:00+08:00"
    worker.worker.start()
    after = api.get("/v1/actions", headers=auth(keys["ingest"])).json()["next_after"]

    got: dict[str, Any] = {}

    def long_poll() -> None:
        got["response"] = api.get(f"/v1/actions?after={after}&wait=10", headers=auth(keys["ingest"]))

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.3)
    assert "response" not in got  # held: nothing new yet
    clock.set(T0 + timedelta(minutes=90))
    poller.join(10)
    [record] = got["response"].json()["records"]
    assert record["action"]["type"] == "notify" and record["action"]["channels"] == ["sms", "email", "in_app"]

    clock.set(T0 + timedelta(hours=2))
    wait_until(lambda: len(receiver.accepted()) == 2)
    assert [r.json["action"]["type"] for r in receiver.accepted()] == ["notify", "escalate"]
    assert receiver.verify_all()
    feed = api.get("/v1/actions", headers=auth(keys["ingest"])).json()["records"]
    assert [r["action"]["type"] for r in feed] == ["start_timer", "notify", "escalate"]
    decision = api.get(f"/v1/decisions/{feed[2]['decision_id']}", headers=auth(keys["auditor"])).json()
    assert decision["event"]["type"] == "timer.due" and decision["event"]["timer"]["point"] == "due"
    assert api.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"]


def test_accepted_after_one_hour_fires_nothing(
    api: TestClient, keys: dict[str, str], worker: WorkerParts, clock: VirtualClock
) -> None:
    post(api, keys["ingest"], complaint("c1", "C-1", T0))
    worker.worker.start()
    clock.set(T0 + timedelta(hours=1))
    answer = post(api, keys["ingest"], complaint("c2", "C-1", clock.now(), "ticket.accepted"))
    assert [a["type"] for a in answer["actions"]] == ["cancel_timer"]
    clock.set(T0 + timedelta(hours=5))
    time.sleep(0.4)
    feed = api.get("/v1/actions", headers=auth(keys["ingest"])).json()["records"]
    assert [r["action"]["type"] for r in feed] == ["start_timer", "cancel_timer"]
    report = api.get(
        "/v1/reports/sla",
        params={
            "from": "2026-11-01T00:00:00+08:00",
            "to": "2026-11-03T00:00:00+08:00",
            "group_by": "ruleset,day",
        },
        headers=auth(keys["compliance"]),
    )
    assert report.status_code == 200, report.text
    [group] = report.json()["groups"]
    assert group["key"] == {"ruleset": "complaint-sla", "day": "2026-11-02"}
    assert (group["met"], group["breached"], group["avg_remaining_seconds"]) == (1, 0, 3600.0)


def test_pause_and_resume_answer_with_the_moved_deadline(
    api: TestClient, keys: dict[str, str], clock: VirtualClock
) -> None:
    post(api, keys["ingest"], complaint("c1", "C-1", T0))
    clock.set(T0 + timedelta(minutes=30))
    post(api, keys["ingest"], complaint("c2", "C-1", T0 + timedelta(minutes=30), "ticket.paused"))
    clock.set(T0 + timedelta(hours=3))
    answer = post(api, keys["ingest"], complaint("c3", "C-1", T0 + timedelta(hours=3), "ticket.resumed"))
    [resume] = answer["actions"]
    assert resume["type"] == "resume_timer" and resume["due_at"] == "2026-11-02T13:30:00+08:00"
    again = post(api, keys["ingest"], complaint("c3", "C-1", T0 + timedelta(hours=3), "ticket.resumed"))
    assert again == answer


def test_roles_and_errors_of_the_admin_and_report_routes(api: TestClient, keys: dict[str, str]) -> None:
    body = {"url": "http://127.0.0.1:9/hook"}
    assert api.post("/v1/webhooks", json=body).status_code == 401
    assert api.post("/v1/webhooks", json=body, headers=auth(keys["ingest"])).status_code == 403
    bad = api.post("/v1/webhooks", json={"url": "ftp://x/y"}, headers=auth(keys["admin"]))
    assert bad.status_code == 422 and bad.json()["details"][0]["path"] == "url"
    extra = api.post("/v1/webhooks", json={**body, "colour": 1}, headers=auth(keys["admin"]))
    assert extra.status_code == 422
    created = api.post("/v1/webhooks", json=body, headers=auth(keys["admin"])).json()
    listed = api.get("/v1/webhooks", headers=auth(keys["admin"])).json()["subscriptions"]
    assert [s["id"] for s in listed] == [created["id"]] and listed[0]["secret"] is None
    paused = api.patch(f"/v1/webhooks/{created['id']}", json={"active": False}, headers=auth(keys["admin"]))
    assert paused.json()["active"] is False
    assert api.get("/v1/webhooks/wh_000000000000", headers=auth(keys["admin"])).status_code == 404
    assert api.get("/v1/webhooks/wh_nope", headers=auth(keys["admin"])).status_code == 422
    missing = api.post("/v1/webhooks/dead-letters/wh_000000000000-1/redrive", headers=auth(keys["admin"]))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert api.delete(f"/v1/webhooks/{created['id']}", headers=auth(keys["admin"])).status_code == 204
    window = {"from": "2026-11-01T00:00:00+08:00", "to": "2026-11-02T00:00:00+08:00"}
    assert api.get("/v1/reports/sla", params=window, headers=auth(keys["ingest"])).status_code == 403
    assert api.get("/v1/reports/sla", params=window, headers=auth(keys["auditor"])).status_code == 200
    wrong = api.get("/v1/reports/sla", params={**window, "group_by": "colour"}, headers=auth(keys["admin"]))
    assert wrong.status_code == 422 and wrong.json()["details"][0]["path"] == "group_by"
    naive = api.get(
        "/v1/reports/sla",
        params={"from": "2026-11-01T00:00:00", "to": "2026-11-02T00:00:00"},
        headers=auth(keys["admin"]),
    )
    assert naive.status_code == 422


def test_dead_letters_are_listed_and_redriven_over_the_api(
    api: TestClient,
    keys: dict[str, str],
    worker: WorkerParts,
    receiver: Receiver,  # noqa: F811
) -> None:
    sub = api.post(
        "/v1/webhooks",
        json={"url": receiver.url, "action_types": ["trigger_payment"]},
        headers=auth(keys["admin"]),
    ).json()
    receiver.secret = sub["secret"]
    receiver.script = [500, 500]
    expense = {
        "event_id": "x1",
        "type": "ticket.created",
        "occurred_at": T0.isoformat(),
        "ticket": {
            "kind": "expense",
            "id": "E-1",
            "expense_type": "差旅费",
            "amount": 4999.99,
            "applicant_rank": "部门经理",
            "applicant": "赵敏",
        },
    }
    post(api, keys["ingest"], expense)
    worker.worker.start()

    def dead() -> list[dict[str, Any]]:
        letters: list[dict[str, Any]] = api.get(
            "/v1/webhooks/dead-letters", headers=auth(keys["admin"])
        ).json()["deliveries"]
        return letters

    wait_until(lambda: len(dead()) == 1)
    [letter] = dead()
    assert letter["status"] == "dead" and letter["attempts"] == 2 and letter["last_status"] == 500
    redriven = api.post(
        f"/v1/webhooks/dead-letters/{letter['delivery_id']}/redrive", headers=auth(keys["admin"])
    )
    assert redriven.json() == {"redriven": 1}
    wait_until(lambda: len(receiver.accepted()) == 1)
    payment = receiver.accepted()[0].json
    assert payment["action"] == {
        "type": "trigger_payment",
        "amount": 4999.99,
        "rule": payment["action"]["rule"],
    }

    def statuses() -> list[str]:
        history = api.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=auth(keys["admin"])).json()
        return [d["status"] for d in history["deliveries"]]

    # The receiver answers before the worker records the answer: wait for the record, not the request.
    wait_until(lambda: statuses() != ["pending"])
    assert statuses() == ["delivered"]


def test_long_poll_returns_at_once_when_actions_exist_and_empty_after_the_wait(
    api: TestClient, keys: dict[str, str]
) -> None:
    post(api, keys["ingest"], complaint("c1", "C-1", T0))
    started = time.monotonic()
    assert len(api.get("/v1/actions?wait=10", headers=auth(keys["ingest"])).json()["records"]) == 1
    assert time.monotonic() - started < 2
    empty = api.get("/v1/actions?after=1&wait=0.5", headers=auth(keys["ingest"])).json()
    assert empty == {"records": [], "next_after": 1}
    assert api.get("/v1/actions?wait=31", headers=auth(keys["ingest"])).status_code == 422


def test_sla_report_as_csv_and_xlsx(api: TestClient, keys: dict[str, str], clock: VirtualClock) -> None:
    """`format=csv|xlsx`: one row per group and a 合计 row; CSV in UTF-8 with a BOM, XLSX opened by openpyxl."""
    post(api, keys["ingest"], complaint("c1", "C-1", T0))
    clock.set(T0 + timedelta(hours=1))
    post(api, keys["ingest"], complaint("c2", "C-1", clock.now(), "ticket.accepted"))
    window = {
        "from": "2026-11-01T00:00:00+08:00",
        "to": "2026-11-03T00:00:00+08:00",
        "group_by": "ruleset,day",
    }
    as_csv = api.get("/v1/reports/sla", params={**window, "format": "csv"}, headers=auth(keys["compliance"]))
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    disposition = as_csv.headers["content-disposition"]
    assert (
        disposition.startswith('attachment; filename="sla-20261101-20261103.csv"')
        and "filename*=UTF-8''" in disposition
    )
    assert as_csv.content.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["规则集 (ruleset)", "日 (day)", "总数 (total)", "达成 (met)", "超时 (breached)"]
    assert rows[1][:5] == ["complaint-sla", "2026-11-02", "1", "1", "0"]
    assert rows[2][:5] == ["合计", "", "1", "1", "0"]
    assert len(rows) == 3
    as_xlsx = api.get("/v1/reports/sla", params={**window, "format": "xlsx"}, headers=auth(keys["auditor"]))
    assert as_xlsx.status_code == 200, as_xlsx.text
    assert (
        as_xlsx.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    book = openpyxl.load_workbook(io.BytesIO(as_xlsx.content))
    assert book.sheetnames == ["SLA达成率", "说明"]
    cells = [list(row) for row in book["SLA达成率"].iter_rows(values_only=True)]
    assert cells[0] == rows[0]
    assert cells[1][:5] == ["complaint-sla", "2026-11-02", 1, 1, 0] and cells[1][5] == 1
    assert cells[2][:2] == ["合计", None]
    about = dict(book["说明"].iter_rows(min_row=2, values_only=True))
    assert about["from"].startswith("2026-10-31T16:00:00") and about["timezone"] == "Asia/Shanghai"
    wrong = api.get("/v1/reports/sla", params={**window, "format": "pdf"}, headers=auth(keys["auditor"]))
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_request"
