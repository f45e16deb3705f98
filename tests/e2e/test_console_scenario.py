"""The issue's scenario in a real browser: an editor changes the travel threshold 5000 → 8000 in the table
grid, sees the two failing cases with expected and actual, fixes both in the case form and submits; the
author's own approval is refused (four eyes); a second person approves and publishes with an effective
time (two minutes ahead, to the minute); once it is in force, a new 6000 元 travel claim's decision page
(为什么) shows v2 and the fired row with its conditions; an auditor sees no edit button and is refused the
editor (page and API); a compliance user sees a loan's clear phone number on its decision page, an auditor
the mask."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Console, Pages
from tests.integration.conftest import event

pytestmark = pytest.mark.xdist_group("browser")

RULESET = "expense-approval"


def fix_case(page: Any, row: str, name: str, amount: str) -> None:
    page.locator(f'tr[data-case="{row}"]').get_by_role("link", name="修改样例").click()
    expect(page.locator("h1")).to_contain_text("修改样例")  # the 测试用例 page's case form, back to the draft
    page.get_by_label("样例名称").fill(name)
    amount_field = page.locator('#events [data-field="amount"]')
    expect(amount_field).to_have_value(row.removeprefix("差旅费").split("元")[0])
    amount_field.fill(amount)
    page.get_by_role("button", name="保存到草稿").click()
    expect(page.locator(f'tr[data-case="{name}"] .badge')).to_have_text("通过")


def test_threshold_change_from_grid_to_publication(pages: Pages, console_server: Console) -> None:
    pages.expect_error(
        "403 (Forbidden)"
    )  # the author's approval and the auditor's editor, refused on purpose
    editor = pages("zhangmin")
    editor.goto(f"/console/rulesets/{RULESET}")
    expect(editor.locator('[data-table="报销审批"] td[data-column="金额"]')).to_have_text("< 5000")
    editor.get_by_role("link", name="编辑决策表").click()

    # the grid: the enum column offers the kind's values; the keyboard moves between cells
    rank = editor.get_by_label("第 1 行 职级")
    options = editor.locator(f"datalist#{rank.get_attribute('list')} option")
    assert "部门经理" in [options.nth(i).get_attribute("value") for i in range(options.count())]
    editor.get_by_label("第 1 行 费用类型").focus()
    editor.keyboard.press("Tab")
    amount = editor.get_by_label("第 1 行 金额")
    expect(amount).to_be_focused()
    editor.keyboard.press("ControlOrMeta+a")
    editor.keyboard.type("< 8000")
    editor.get_by_label("修改原因").fill("差旅费自动审批门槛调整为 8000 元")
    editor.get_by_role("button", name="保存为草稿").click()

    # the draft: the changed cell, and the two cases that now fail with expected vs actual
    expect(editor.locator("h1")).to_contain_text(f"草稿 {RULESET}")
    changed = editor.locator('[data-diff-table="报销审批"] td.changed[data-column="金额"]')
    expect(changed.locator(".old")).to_have_text("< 5000")
    expect(changed.locator(".new")).to_have_text("< 8000")
    failing = editor.locator("#cases tr.fail")
    expect(failing).to_have_count(2)
    assert "期望 {type: assign, group: 费用审批岗}，但没有这样的动作" in failing.first.inner_text()
    assert "auto_approve" in failing.first.inner_text()
    expect(editor.locator("#submit-draft")).to_be_disabled()

    fix_case(editor, "差旅费5000元整不自动审批转人工", "差旅费8000元整不自动审批转人工", "8000")
    fix_case(editor, "差旅费5000.01元不自动审批转人工", "差旅费8000.01元不自动审批转人工", "8000.01")
    expect(editor.locator("#cases tr.fail")).to_have_count(0)
    editor.get_by_role("button", name="提交审批").click()
    expect(editor.locator("#draft-status")).to_have_text("待审批")
    draft_url = editor.url

    # four eyes: the author holds the approver role too, and is refused
    editor.get_by_role("button", name="批准").click()
    expect(editor.locator("#flash")).to_contain_text("four_eyes")
    expect(editor.locator("#draft-status")).to_have_text("待审批")

    # a browser set to English and New York time: the effective time is still typed and shown in Beijing time
    approver = pages("lilei", locale="en-US", timezone_id="America/New_York")
    approver.goto(draft_url)
    approver.get_by_label("审批意见").fill("门槛调整已与财务确认")
    approver.get_by_role("button", name="批准").click()
    expect(approver.locator("#draft-status")).to_have_text("已批准")
    effective = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(minutes=2)
    effective_field = approver.get_by_label("生效时间（北京时间；留空为立即）")
    expect(effective_field).to_have_attribute("placeholder", "2026-12-05 09:00")
    effective_field.fill(effective.strftime("%Y-%m-%d %H:%M"))
    approver.get_by_role("button", name="发布").click()
    expect(approver.locator("h1")).to_have_text(f"规则集 {RULESET}")
    v2 = approver.locator('#versions tr[data-version="2"]')
    expect(v2).to_contain_text("待生效")
    expect(v2).to_contain_text("张敏")
    expect(v2).to_contain_text("李雷")
    expect(v2).to_contain_text(effective.strftime("%Y-%m-%d %H:%M"))
    approver.goto("/console/rulesets")
    expect(approver.locator(f'tr[data-ruleset="{RULESET}"]')).to_contain_text("v2")

    # the auditor reads, and cannot edit
    auditor = pages("wangshen")
    auditor.goto(draft_url)
    expect(auditor.locator("#draft-status")).to_have_text("已发布")
    auditor.goto(f"/console/rulesets/{RULESET}")
    expect(auditor.locator("#edit-ruleset")).to_have_count(0)
    response = auditor.goto(f"/console/rulesets/{RULESET}/edit")
    assert response is not None and response.status == 403
    expect(auditor.locator(".error-page")).to_contain_text("无权")
    refused = auditor.request.post(
        f"/v1/rulesets/{RULESET}/drafts",
        data="ruleset: expense-approval\n",
        headers={"Content-Type": "application/yaml", "X-CSRF-Token": csrf(auditor)},
    )
    assert refused.status == 403, refused.text()

    # once v2 is in force, a new travel claim of 6000 元 is approved automatically by the changed row
    wait_in_force(console_server, 2, effective)
    decided = console_server.api("POST", "/v1/events", json=claim(6000)).json()
    assert [a["type"] for a in decided["actions"]] == ["auto_approve", "trigger_payment"], decided
    auditor.goto(f"/console/decisions/{decided['decision_id']}")
    expect(auditor.locator("#versions")).to_contain_text(f"{RULESET} v2")
    row = auditor.locator(f'[data-rule="{RULESET}/报销审批#差旅费小额自动审批"]')
    expect(row).to_contain_text(f"{RULESET} v2")
    expect(row).to_contain_text("金额")
    expect(row).to_contain_text("6000")
    expect(auditor.locator("#actions")).to_contain_text("auto_approve")


def csrf(page: Any) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "rulesvc_csrf")


def claim(amount: int) -> dict[str, Any]:
    now = datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")
    return {
        "event_id": f"scenario-claim-{amount}-{time.time_ns()}",
        "type": "ticket.created",
        "occurred_at": now,
        "ticket": {
            "kind": "expense",
            "id": f"E-scenario-{time.time_ns()}",
            "expense_type": "差旅费",
            "amount": amount,
            "applicant_rank": "部门经理",
            "applicant": "赵敏",
        },
    }


def wait_in_force(console: Console, version: int, effective: datetime) -> None:
    """Until the service's clock passes `effective` and `version` is in force (at most three minutes:
    the effective time is at most two minutes ahead)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        versions = console.api("GET", f"/v1/rulesets/{RULESET}/versions").json()["versions"]
        state = next(v.get("state") for v in versions if v["version"] == version)
        if state == "in_force":
            return
        time.sleep(min(5.0, max(0.5, (effective - datetime.now(effective.tzinfo)).total_seconds())))
    raise AssertionError(f"{RULESET} v{version} not in force by {effective}")


def test_compliance_reads_the_phone_number_clear_and_the_auditor_masked(
    pages: Pages, console_server: Console
) -> None:
    loan = event(f"scenario-loan-{time.time_ns()}", "loan", id=f"L-scenario-{time.time_ns()}")
    loan["occurred_at"] = datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")
    decided = console_server.api("POST", "/v1/events", json=loan)
    assert decided.status_code == 200, decided.text
    path = f"/console/decisions/{decided.json()['decision_id']}"
    compliance = pages("hegui")
    compliance.goto(path)
    expect(compliance.locator("#clear")).to_be_visible()
    expect(compliance.locator('#event [data-field="mobile"]')).to_have_text("13812345678")
    auditor = pages("wangshen")
    auditor.goto(path)
    expect(auditor.locator("#masked")).to_be_visible()
    expect(auditor.locator('#event [data-field="mobile"]')).to_have_text("138****5678")
    expect(auditor.locator("main")).not_to_contain_text("13812345678")
