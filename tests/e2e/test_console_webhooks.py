"""通知与订阅 in a real browser: the admin pauses a subscription (it then reads 已暂停, and that it stays
paused over worker restarts) and resumes it, through the page's buttons (PATCH /v1/webhooks/{id}). No
browser console error."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Console, Pages

pytestmark = pytest.mark.xdist_group("browser")


def test_the_admin_pauses_and_resumes_a_subscription(pages: Pages, console_server: Console) -> None:
    created = console_server.api(
        "POST", "/v1/webhooks", json={"url": "https://crm.example.cn/hook", "description": "暂停测试"}
    )
    assert created.status_code == 201, created.text
    hook = created.json()["id"]

    admin = pages("admin")
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.goto("/console/webhooks")
    row = admin.locator(f'#subscriptions tr[data-subscription="{hook}"]')
    expect(row).to_contain_text("生效中")
    row.get_by_role("button", name="暂停").click()
    expect(row).to_have_attribute("data-state", "paused")
    expect(row).to_contain_text("已暂停")
    expect(row).to_contain_text("worker 重启也不会恢复")
    listed = console_server.api("GET", "/v1/webhooks").json()["subscriptions"]
    assert [(s["active"], s["paused"]) for s in listed if s["id"] == hook] == [(False, True)]

    row.get_by_role("button", name="恢复").click()
    expect(row).to_have_attribute("data-state", "active")
    expect(row).to_contain_text("生效中")
