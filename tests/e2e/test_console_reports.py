"""看板与报表 in a real browser: timer points due within 24 hours and overdue, late fires, the distribution
of tickets by a field chosen in the form (complaints by channel, per day), filters by ruleset and group
carried into the CSV/XLSX links; readable on a phone. No browser console error."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Console, Pages

pytestmark = pytest.mark.xdist_group("browser")

SHANGHAI = ZoneInfo("Asia/Shanghai")


def complain(console: Console, channel: str, reported: datetime) -> None:
    ticket = f"C-dash-{time.time_ns()}"
    body = {
        "event_id": f"dash-{ticket}",
        "type": "ticket.created",
        "occurred_at": reported.isoformat(timespec="seconds"),
        "ticket": {"kind": "complaint", "id": ticket, "owner": "李娜", "channel": channel},
    }
    answer = console.api("POST", "/v1/events", json=body)
    assert answer.status_code == 200, answer.text


def test_timers_late_fires_and_tickets_by_a_chosen_field(pages: Pages, console_server: Console) -> None:
    now = datetime.now(SHANGHAI)
    complain(console_server, "微信银行", now)  # its 首次响应 points fall due today
    complain(console_server, "电话", now - timedelta(hours=3))  # fired at once by the worker, late
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        window = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
        late = console_server.api("GET", "/v1/reports/late-fires", params=window).json()
        if late["total"]["late"] >= 2:
            break
        time.sleep(0.5)

    auditor = pages("wangshen")
    auditor.goto("/console/reports")
    expect(auditor.locator("h1")).to_have_text("看板与报表")
    assert int(auditor.locator("#due-soon").inner_text()) >= 1  # each timer's next point
    assert int(auditor.locator("#late-count").inner_text()) >= 2
    expect(auditor.locator("#timers")).to_contain_text("首次响应")
    auditor.get_by_label("工单类型").fill("complaint")
    auditor.get_by_label("分布字段").fill("channel")
    auditor.get_by_label("分布周期").select_option("day")
    auditor.get_by_label("规则集").fill("complaint-sla")
    auditor.get_by_role("button", name="刷新").click()
    spread = auditor.locator("#spread")
    expect(spread).to_contain_text("按 channel")
    expect(spread.locator("thead")).to_contain_text("微信银行")
    expect(spread.locator(f'tr[data-bucket="{now.date().isoformat()}"]')).to_be_visible()
    expect(spread.get_by_role("link", name="CSV")).to_have_attribute("href", re.compile("field=channel"))
    expect(auditor.locator("#late").get_by_role("link", name="XLSX")).to_have_attribute(
        "href", re.compile("ruleset=complaint-sla")
    )
    expect(auditor.locator("#rules")).not_to_contain_text("loan-routing")

    auditor.set_viewport_size({"width": 390, "height": 844})  # a manager's phone
    auditor.reload()
    expect(auditor.locator("#timers")).to_be_visible()
    width = auditor.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways on a phone ({width} px)"
