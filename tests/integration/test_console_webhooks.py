"""The 通知与订阅 page (role `admin`): every webhook subscription and notification channel, in service,
paused by an operator (stays paused over worker restarts: the page says so) or off because its channel
left the settings, with what waits for each (pending, the oldest since when, dead letters) and the
buttons that pause, resume and re-drive through the `/v1` routes. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import replace

from fastapi import FastAPI
from fastapi.testclient import TestClient

from rulesvc.delivery.service import SendResult, WebhookService
from rulesvc.settings import ChannelConfig
from tests.integration.conftest import auth, event
from tests.integration.lifecycle_support import console_app

app = console_app

WECOM = ChannelConfig.model_validate(
    {"type": "wecom", "webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K-SECRET"}
)
DINGTALK = ChannelConfig.model_validate(
    {"type": "dingtalk", "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=T-SECRET"}
)


def row_of(page: str, subscription: str) -> str:
    found = re.search(rf'<tr data-subscription="{subscription}"[^>]*>.*?</tr>', page, re.S)
    assert found is not None, f"{subscription} not listed"
    return found.group(0)


def test_the_page_shows_each_subscription_paused_or_removed_with_its_backlog(
    client: TestClient, keys: dict[str, str], app: FastAPI
) -> None:
    admin = auth(keys["admin"])
    webhooks: WebhookService = app.state.timers.webhooks
    created = client.post(
        "/v1/webhooks",
        json={"url": "https://crm.example.cn/hook?token=abc123", "description": "客户关系系统"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    hook = created.json()["id"]
    webhooks.sync_channels({"ops": WECOM, "gone": DINGTALK})
    webhooks.sync_channels({"ops": WECOM})  # a worker started without `gone`: its channel is off
    paused = client.patch("/v1/webhooks/ch_ops", json={"active": False}, headers=admin)
    assert paused.status_code == 200 and paused.json()["paused"] is True

    for n in (1, 2):
        assert (
            client.post("/v1/events", json=event(f"wh-{n}"), headers=auth(keys["ingest"])).status_code == 200
        )
    webhooks.fan_out()
    webhooks.policy = replace(
        webhooks.policy, max_attempts=1
    )  # as RULESVC_WEBHOOK_MAX_ATTEMPTS=1 in a worker
    claimed = webhooks.claim(1, hook)
    assert webhooks.complete(claimed[0], SendResult(500))  # the only attempt: a dead letter

    page = client.get("/console/webhooks", headers=admin)
    assert page.status_code == 200, page.text
    assert 'href="/console/webhooks"' in page.text and "通知与订阅" in page.text

    ops = row_of(page.text, "ch_ops")
    assert 'data-state="paused"' in ops and "已暂停" in ops and "worker 重启也不会恢复" in ops
    assert "企业微信群机器人 ops" in ops and "K-SECRET" not in page.text and "T-SECRET" not in page.text
    assert ">恢复</button>" in ops and '"active": true' in ops and ">暂停</button>" not in ops

    gone = row_of(page.text, "ch_gone")
    assert 'data-state="removed"' in gone and "已停用" in gone and "已从配置中删除" in gone
    assert "钉钉群机器人 gone" in gone and "</button>" not in gone

    mine = row_of(page.text, hook)
    assert 'data-state="active"' in mine and "生效中" in mine and "客户关系系统" in mine
    assert "https://crm.example.cn/hook?…" in mine and "abc123" not in page.text
    assert ">暂停</button>" in mine and '"active": false' in mine
    pending = sum(
        1 for d in webhooks.deliveries(hook, "pending", 0, 100)
    )  # the expense events' actions, one delivery each
    (dead_cell,) = re.findall(r'<span class="badge fail">(\d+)</span>', mine)
    assert dead_cell == "1" and pending >= 1
    assert re.search(rf"<td>{pending}<br><span class=\"muted\">最早 20\d\d-\d\d-\d\d \d\d:\d\d</span>", mine)
    assert f'data-api-url="/v1/webhooks/{hook}/redrive"' in mine

    # the buttons' routes: resume the channel, re-drive the dead letter
    resumed = client.patch("/v1/webhooks/ch_ops", json={"active": True}, headers=admin)
    assert resumed.status_code == 200
    assert client.post(f"/v1/webhooks/{hook}/redrive", headers=admin).json() == {"redriven": 1}
    again = client.get("/console/webhooks", headers=admin).text
    assert 'data-state="active"' in row_of(again, "ch_ops")
    assert 'class="badge fail"' not in row_of(again, hook)


def test_only_admins_see_the_page_and_its_navigation_entry(client: TestClient, keys: dict[str, str]) -> None:
    refused = client.get("/console/webhooks", headers=auth(keys["auditor"]))
    assert refused.status_code == 403 and "webhooks" not in refused.text.split("<main", 1)[0]
    audit = client.get("/console/audit", headers=auth(keys["auditor"]))
    assert audit.status_code == 200 and 'href="/console/webhooks"' not in audit.text
    empty = client.get("/console/webhooks", headers=auth(keys["admin"]))
    assert empty.status_code == 200 and "还没有订阅或通知渠道" in empty.text
