"""Every console page opens without a browser console error, at 1366×768, with Chinese fonts; each is
photographed (into CONSOLE_SCREENSHOTS_DIR when set — `make screenshots` sets docs/screenshots — else into
the test's temp folder). The 日历 year view and the 审计 chain verification are checked here too."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Console, Pages

pytestmark = pytest.mark.xdist_group("browser")

RULESET = "expense-approval"


def a_draft(console: Console) -> str:
    """A draft of the travel threshold change (against whatever version is latest), with failing cases."""
    versions = console.api("GET", f"/v1/rulesets/{RULESET}/versions").json()["versions"]
    latest = max(v["version"] for v in versions)
    content = console.api("GET", f"/v1/rulesets/{RULESET}/versions/{latest}").json()["content"]
    threshold = re.search(r'金额: "< (\d+)"', content)
    assert threshold is not None
    bigger = str(int(threshold.group(1)) + 3000)
    answer = console.api(
        "POST",
        f"/v1/rulesets/{RULESET}/drafts",
        params={"reason": f"差旅费自动审批门槛调整为 {bigger} 元"},
        content=content.replace(threshold.group(0), f'金额: "< {bigger}"').encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["draft_id"])


def an_hour_ago(console: Console) -> str:
    """A travel claim of 6000 元 and a complaint made an hour ago (the worker fires the complaint's late
    warning at once); the complaint's decision id. The claim is what the draft's replay changes."""
    made = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(hours=1, minutes=40)).isoformat(
        timespec="seconds"
    )
    claim = {"kind": "expense", "id": "E-2026-0815", "expense_type": "差旅费", "amount": 6000}
    claim |= {"applicant_rank": "总监", "applicant": "钱多多"}
    complaint = {"kind": "complaint", "id": "C-2026-0815", "owner": "李娜", "channel": "微信银行"}
    decided = ""
    for n, ticket in enumerate((claim, complaint)):
        body = {"event_id": f"shot-{n}", "type": "ticket.created", "occurred_at": made, "ticket": ticket}
        answer = console.api("POST", "/v1/events", json=body)
        assert answer.status_code == 200, answer.text
        decided = str(answer.json()["decision_id"])
    return decided


def at_work(page: Any, shot: str) -> None:
    """What a page shows once used: the text editor's mark at a typo, the cases run with their results."""
    if shot == "edit_text":
        expect(page.locator("#check-status")).to_have_text("检查通过，没有发现问题。")
        page.get_by_label("规则集文件").evaluate(
            "t => { const i = t.value.indexOf('>= 部门经理') + 3; t.focus(); t.setSelectionRange(i, i + 4); }"
        )
        page.keyboard.type("部门经里")
        expect(page.locator("#diagnostics button.diagnostic")).to_have_count(1)
    elif shot == "draft":
        page.get_by_role("button", name="开始回放").click()
        expect(page.locator("#replay-summary")).to_contain_text("因本草稿结果改变")
    elif shot == "cases":
        page.get_by_role("button", name="运行全部样例").click()
        expect(page.locator("#run-summary")).to_contain_text("未通过")


def some_subscriptions(console_server: Console) -> None:
    """Two webhooks for 通知与订阅, the second paused by the admin."""
    for url, description in (
        ("https://crm.bank.cn/rulesvc/hook", "客户关系系统：审批结果"),
        ("https://oa.bank.cn/rulesvc/sla?token=secret", "办公系统：超时升级"),
    ):
        made = console_server.api("POST", "/v1/webhooks", json={"url": url, "description": description})
        assert made.status_code == 201, made.text
    paused = console_server.api("PATCH", f"/v1/webhooks/{made.json()['id']}", json={"active": False})
    assert paused.status_code == 200, paused.text


def test_every_page_opens_cleanly_and_is_photographed(
    pages: Pages, console_server: Console, tmp_path: Path
) -> None:
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    draft = a_draft(console_server)
    why = an_hour_ago(console_server)
    some_subscriptions(console_server)
    signed_out = pages(None)
    signed_out.goto("/console/")
    expect(signed_out.locator("h1")).to_have_text("登录")
    signed_out.screenshot(path=str(folder / "signin.png"))

    admin = pages("admin")
    shots = {
        "rulesets": ("/console/rulesets", "规则集"),
        "ruleset": (f"/console/rulesets/{RULESET}", f"规则集 {RULESET}"),
        "edit": (f"/console/rulesets/{RULESET}/edit", f"编辑 {RULESET}"),
        "edit_text": (f"/console/rulesets/{RULESET}/edit/text", f"编辑 {RULESET}"),
        "drafts": ("/console/drafts", "草稿"),
        "draft": (f"/console/rulesets/{RULESET}/drafts/{draft}", f"草稿 {RULESET}"),
        "cases": (f"/console/cases?ruleset={RULESET}&draft={draft}", "测试用例"),
        "caseform": (f"/console/cases/{RULESET}/1?draft={draft}", "修改样例"),
        "decisions": ("/console/decisions", "决策查询"),
        "decision": (f"/console/decisions/{why}", "为什么"),
        "reports": ("/console/reports", "看板与报表"),
        "calendars": ("/console/calendars?name=cn&year=2026", "日历"),
        "audit": ("/console/audit", "审计"),
        "webhooks": ("/console/webhooks", "通知与订阅"),
    }
    for shot, (path, heading) in shots.items():
        response = admin.goto(path)
        assert response is not None and response.status == 200, path
        expect(admin.locator("h1")).to_contain_text(heading)
        at_work(admin, shot)
        admin.screenshot(path=str(folder / f"{shot}.png"), full_page=True)

    admin.goto("/console/calendars?name=cn&year=2026")
    october = admin.get_by_role("table", name="2026 年 10 月")
    expect(october.locator("td.holiday").first).to_have_attribute("title", re.compile("国庆节"))
    expect(admin.locator("#year-counts")).to_contain_text("工作日")
    admin.goto("/console/audit")
    admin.get_by_role("button", name="立即校验").click()
    expect(admin.locator("#verify-result")).to_contain_text("校验通过")
    expect(admin.locator("#changes")).to_contain_text("expense-approval")
