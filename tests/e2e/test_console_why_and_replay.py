"""为什么 and 草稿 in a real browser: a complaint reported three hours late has its 首次响应 timer on a
timeline (started, the warning and the deadline fired late by the worker of `rulesvc serve`); an editor
replays a draft raising the travel threshold and reads how many decisions would change, with masked
examples. No browser console error."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Console, Pages
from tests.e2e.test_console_pages import RULESET, a_draft

pytestmark = pytest.mark.xdist_group("browser")

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_the_why_page_shows_the_tickets_timers_on_a_timeline(pages: Pages, console_server: Console) -> None:
    reported = datetime.now(SHANGHAI) - timedelta(hours=3)
    ticket = f"C-why-{time.time_ns()}"
    body = {
        "event_id": f"why-{ticket}",
        "type": "ticket.created",
        "occurred_at": reported.isoformat(timespec="seconds"),
        "ticket": {"kind": "complaint", "id": ticket, "owner": "李娜", "channel": "电话"},
    }
    decided = console_server.api("POST", "/v1/events", json=body)
    assert decided.status_code == 200, decided.text
    decision_id = decided.json()["decision_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the worker fires both points at once (they are past)
        timers = console_server.api("GET", f"/v1/decisions/{decision_id}/timers").json()["timers"]
        if timers and timers[0]["status"] == "finished":
            break
        time.sleep(0.5)

    auditor = pages("wangshen")
    auditor.goto(f"/console/decisions/{decision_id}")
    timer = auditor.locator('[data-timer="首次响应"]')
    expect(timer.locator('[data-kind="started"] time')).to_have_text(reported.strftime("%Y-%m-%d %H:%M:%S"))
    expect(timer.locator('[data-kind="warning"]')).to_have_attribute("data-state", "late")
    expect(timer.locator('[data-kind="due"]')).to_have_attribute("data-state", "late")
    expect(timer.locator('[data-kind="due"]')).to_contain_text(re.compile(r"迟 \d+ 秒"))
    expect(timer).to_contain_text("已到期")


def test_an_editor_replays_a_draft_and_reads_masked_examples(pages: Pages, console_server: Console) -> None:
    draft = a_draft(console_server)
    content = console_server.api("GET", f"/v1/rulesets/{RULESET}/drafts/{draft}").json()["content"]
    raised = re.search(r'金额: "< (\d+)"', content)
    assert raised is not None
    amount = int(raised.group(1)) - 1000  # above every published threshold, below the draft's
    claim = {
        "event_id": f"replay-{time.time_ns()}",
        "type": "ticket.created",
        "occurred_at": datetime.now(SHANGHAI).isoformat(timespec="seconds"),
        "ticket": {
            "kind": "expense",
            "id": f"E-replay-{time.time_ns()}",
            "expense_type": "差旅费",
            "amount": amount,
            "applicant_rank": "总监",
            "applicant": "钱多多",
        },
    }
    decided = console_server.api("POST", "/v1/events", json=claim)
    assert decided.status_code == 200 and decided.json()["actions"][0]["type"] == "assign", decided.text

    editor = pages("zhangmin")
    editor.goto(f"/console/rulesets/{RULESET}/drafts/{draft}")
    expect(editor.locator("#replay-summary")).to_have_text("还没有回放。")
    later = datetime.now(SHANGHAI) + timedelta(minutes=5)
    editor.get_by_label("止（不含）").fill(later.strftime("%Y-%m-%d %H:%M"))
    editor.get_by_role("button", name="开始回放").click()
    expect(editor.locator("#replay-summary")).to_contain_text("因本草稿结果改变")
    examples = editor.locator("#replay-examples")
    expect(examples.locator(f'a[href$="/decisions/{decided.json()["decision_id"]}"]')).to_be_visible()
    expect(examples).to_contain_text("auto_approve")
    expect(examples).not_to_contain_text("钱多多")
    expect(editor.locator('#replay-actions tr[data-action="auto_approve"]')).to_be_visible()

    auditor = pages("wangshen")
    auditor.goto(f"/console/rulesets/{RULESET}/drafts/{draft}")
    expect(auditor.locator("#replay-summary")).to_contain_text("因本草稿结果改变")
    expect(auditor.get_by_role("button", name="开始回放")).to_have_count(0)
