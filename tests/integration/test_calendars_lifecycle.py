"""Calendars through the ruleset lifecycle over HTTP, on SQLite and PostgreSQL: the folder's calendars are
version 1, a draft with mistakes is refused with every `file:line:col`, a draft adding a make-up day is
diffed day by day, its author cannot approve it, it is published with an effective time, every step is in
the hash chain, and each event is decided on the calendar version in force at its `occurred_at`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli import rulesets_client
from cli.calendars import app as calendars_cli
from rulesvc.apikeys import Role
from rulesvc.sla.clock import VirtualClock
from tests.integration.conftest import RULESETS, auth
from tests.integration.lifecycle_support import lifecycle_client, role_keys

CN = (RULESETS / "calendars" / "cn.yaml").read_text(encoding="utf-8")
START = datetime.fromisoformat("2027-02-19T16:00:00+08:00")  # a Friday; 02-20 is a Saturday
MAKEUP = CN.replace("confirmed_through: 2026-12-31", "confirmed_through: 2027-12-31").replace(
    "workdays:\n", 'workdays:\n  2027-02-20: "春节调休"\n', 1
)
BROKEN = (
    CN.replace("holidays:\n", 'holidays:\n  2027-13-01: "不存在"\n  2027-02-20: "两者都是"\n', 1)
    .replace("workdays:\n", 'workdays:\n  2027-02-20: "两者都是"\n', 1)
    .replace('  mon: ["09:00-12:00", "13:00-18:00"]', '  mon: ["09:00-12:00", "11:00-18:00"]', 1)
)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def client(database_url: str, clock: VirtualClock) -> Iterator[TestClient]:
    with lifecycle_client(database_url, clock) as test_client:
        yield test_client


@pytest.fixture
def keys(client: TestClient) -> dict[str, str]:
    roles = {
        "editor": {Role.EDITOR},
        "approver": {Role.APPROVER},
        "both": {Role.EDITOR, Role.APPROVER},
        "auditor": {Role.AUDITOR},
        "ingest": {Role.INGEST},
    }
    return role_keys(client, roles, START)


def push(client: TestClient, key: str, text: str, reason: str = "国务院 2027 年放假安排") -> Any:
    return client.post(
        "/v1/calendars/cn/drafts",
        content=text.encode("utf-8"),
        params={"reason": reason},
        headers={**auth(key), "Content-Type": "application/yaml"},
    )


def step(client: TestClient, key: str, draft_id: str, action: str, body: Any = None) -> Any:
    return client.post(f"/v1/calendars/cn/drafts/{draft_id}/{action}", json=body, headers=auth(key))


def loan(client: TestClient, key: str, event_id: str, occurred_at: datetime) -> dict[str, Any]:
    body = {
        "event_id": event_id,
        "type": "ticket.created",
        "occurred_at": occurred_at.isoformat(),
        "ticket": {
            "kind": "loan",
            "id": f"L-{event_id}",
            "region": "上海浦东",
            "amount": 300000,
            "credit_rating": "A",
            "owner": "周八",
            "stage": "初审",
        },
    }
    response = client.post("/v1/events", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return next(a for a in response.json()["actions"] if a["type"] == "start_timer")


def test_calendar_lifecycle(client: TestClient, keys: dict[str, str], clock: VirtualClock) -> None:
    editor, approver = keys["editor"], keys["approver"]
    listing = client.get("/v1/calendars", headers=auth(editor))
    assert listing.status_code == 200, listing.text
    by_name = {c["name"]: c for c in listing.json()["calendars"]}
    assert by_name["cn"]["version"] == 1 and by_name["cn"]["confirmed_through"] == "2026-12-31"
    v1 = client.get("/v1/calendars/cn/versions/1", headers=auth(editor)).json()
    assert v1["content"] == CN and v1["calendar"] == "cn"

    # Before: a loan created on Friday 16:00 is due on Monday (provisional: 2027 is unconfirmed).
    before = loan(client, keys["ingest"], "a", START)
    assert before["due_at"] == "2027-02-22T11:00:00+08:00"
    assert before["provisional"] is True and before["calendar_version"] == 1

    # A draft with mistakes: every one positioned, nothing stored.
    refused = push(client, editor, BROKEN)
    assert refused.status_code == 422, refused.text
    texts = [e["text"] for e in refused.json()["details"]]
    assert any(t.startswith("cn.yaml:") and "2027-13-01" in t for t in texts), texts
    assert any("2027-02-20" in t for t in texts) and len(texts) >= 3, texts
    assert all(t.split(":")[1].isdigit() and t.split(":")[2].isdigit() for t in texts), texts
    assert client.get("/v1/calendars/cn/drafts", headers=auth(editor)).json()["drafts"] == []

    # The make-up day draft: diffed day by day.
    created = push(client, editor, MAKEUP)
    assert created.status_code == 201, created.text
    draft = created.json()
    draft_id = draft["draft_id"]
    assert draft["calendar"] == "cn" and draft["base_version"] == 1
    assert "2027-02-20（周六）：新增 调休上班（春节调休）" in draft["diff"]["summary"]
    assert "confirmed_through: 2026-12-31 → 2027-12-31" in draft["diff"]["summary"]
    assert draft["tests"]["failed"] == 0 and draft["tests"]["passed"] > 0

    assert step(client, editor, draft_id, "submit").status_code == 200
    own = step(client, editor, draft_id, "approve")
    assert own.status_code == 403  # an editor key may not review at all
    # four eyes: an author holding both roles still cannot approve their own draft
    both = push(client, keys["both"], MAKEUP.replace("春节调休", "调休"))
    assert both.status_code == 201, both.text
    assert step(client, keys["both"], both.json()["draft_id"], "submit").status_code == 200
    refused_own = step(client, keys["both"], both.json()["draft_id"], "approve")
    assert refused_own.status_code == 403 and refused_own.json()["code"] == "four_eyes"
    assert step(client, approver, both.json()["draft_id"], "reject", {"comment": "重复"}).status_code == 200

    approved = step(client, approver, draft_id, "approve", {"comment": "与国务院通知核对一致"})
    assert approved.status_code == 200, approved.text
    effective = START + timedelta(hours=1)
    published = step(client, approver, draft_id, "publish", {"effective_at": effective.isoformat()})
    assert published.status_code == 200, published.text
    assert published.json()["version"] == 2 and published.json()["state"] == "scheduled"

    # As of occurred_at: after the effective time the make-up Saturday counts; before it, it does not.
    clock.advance(timedelta(hours=1, minutes=30))
    after = loan(client, keys["ingest"], "b", START + timedelta(hours=1))
    assert after["due_at"] == "2027-02-20T12:00:00+08:00"
    assert "provisional" not in after
    # An event that occurred before the new version took effect: its rules are those in force then, and
    # its deadline counts the time before the version's effective time on v1, the rest on v2.
    late = loan(client, keys["ingest"], "c", START + timedelta(minutes=40))
    assert late["due_at"] == "2027-02-20T11:40:00+08:00" and late["calendar_version"] == 2

    versions = client.get("/v1/calendars/cn/versions", headers=auth(editor)).json()["versions"]
    assert [(v["version"], v["state"]) for v in versions] == [(1, "superseded"), (2, "in_force")]
    diff = client.get("/v1/calendars/cn/diff", params={"from": "1", "to": "v2"}, headers=auth(editor))
    assert "2027-02-20（周六）：新增 调休上班（春节调休）" in diff.json()["summary"]
    assert "+  2027-02-20" in diff.json()["text"]

    history = client.get("/v1/calendars/cn/history", headers=auth(keys["auditor"]))
    steps = [e["step"] for e in history.json()["entries"]]
    assert steps == [
        *("imported", "draft_created", "submitted"),
        *("draft_created", "submitted", "rejected"),  # the author's own draft, refused to them, rejected
        *("approved", "published", "replanned"),
    ], steps
    assert history.json()["entries"][-1]["calendar"] == "cn"
    assert client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"] is True
    listing = client.get("/v1/calendars", headers=auth(editor)).json()
    assert {c["name"]: c.get("days_left") for c in listing["calendars"]}["cn"] == 315, listing


def test_cli_calendars_beside_rulesets(
    client: TestClient, keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def through_app(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.pop("timeout", None)
        return client.request(method, url.removeprefix("http://rulesvc.test"), **kwargs)

    monkeypatch.setattr(rulesets_client.httpx, "request", through_app)
    env = {"RULESVC_URL": "http://rulesvc.test", "RULESVC_TZ": "Asia/Shanghai"}
    runner = CliRunner()

    def run(key: str, *args: str) -> Any:
        return runner.invoke(calendars_cli, list(args), env={**env, "RULESVC_KEY": keys[key]})

    listed = run("editor", "list")
    assert listed.exit_code == 0, listed.output
    assert "cn         v1  一直生效  官方安排确认到 2026-12-31（还剩 -50 天）" in listed.output
    broken = tmp_path / "cn.yaml"
    broken.write_text(BROKEN, encoding="utf-8")
    refused = run("editor", "push", str(broken))
    assert refused.exit_code == 1 and "2027-13-01" in refused.output, refused.output
    good = tmp_path / "cn2027.yaml"
    good.write_text(MAKEUP, encoding="utf-8")
    pushed = run("editor", "push", str(good), "--reason", "国务院 2027 年放假安排")
    assert pushed.exit_code == 0, pushed.output
    assert "  2027-02-20（周六）：新增 调休上班（春节调休）" in pushed.output
    draft_id = pushed.output.split()[1]
    assert run("editor", "submit", "cn", draft_id).exit_code == 0
    assert run("approver", "approve", "cn", draft_id, "--comment", "核对一致").exit_code == 0
    published = run("approver", "publish", "cn", draft_id)
    assert published.exit_code == 0, published.output
    assert "已发布 cn v2，" in published.output
    shown = run("editor", "diff", "cn", "--from", "1", "--to", "2")
    assert "2027-02-20（周六）：新增 调休上班（春节调休）" in shown.output, shown.output
    history = run("auditor", "history", "cn")
    assert "published" in history.output and "操作人" in history.output and "v2" in history.output, (
        history.output
    )


def test_import_cn_and_ics_make_drafts_never_versions(
    client: TestClient, keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def through_app(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.pop("timeout", None)
        return client.request(method, url.removeprefix("http://rulesvc.test"), **kwargs)

    monkeypatch.setattr(rulesets_client.httpx, "request", through_app)
    env = {"RULESVC_URL": "http://rulesvc.test", "RULESVC_KEY": keys["editor"]}
    runner = CliRunner()

    imported = runner.invoke(calendars_cli, ["import-cn", "--year", "2027"], env=env)
    assert imported.exit_code == 0, imported.output
    assert "状态 编辑中（draft）  基于 v1" in imported.output
    versions = client.get("/v1/calendars/cn/versions", headers=auth(keys["editor"])).json()["versions"]
    assert len(versions) == 1  # a draft, never a publication

    exported = tmp_path / "cn.ics"
    result = runner.invoke(calendars_cli, ["export-ics", "cn", "--out", str(exported)], env=env)
    assert result.exit_code == 0, result.output
    assert "BEGIN:VEVENT" in exported.read_text(encoding="utf-8")
    feed = tmp_path / "feed.ics"
    feed.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//ZH\r\nBEGIN:VEVENT\r\nUID:b\r\n"
        "DTSTART;VALUE=DATE:20270220\r\nSUMMARY:春节补班\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )
    pushed = runner.invoke(calendars_cli, ["import-ics", "cn", str(feed)], env=env)
    assert pushed.exit_code == 0, pushed.output
    assert "2027-02-20（周六）：新增 调休上班（春节补班）" in pushed.output
    drafts = client.get("/v1/calendars/cn/drafts", headers=auth(keys["editor"])).json()["drafts"]
    assert len(drafts) == 2 and all(d["status"] == "draft" for d in drafts)
