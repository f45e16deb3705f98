"""通知与订阅 (role `admin`): every webhook subscription and notification channel (`ch_<渠道名>`), where it
sends, what it receives, whether it is in service, paused by an operator (`PATCH /v1/webhooks/{id}`: stays
paused over worker restarts) or off because its channel left the settings, and what waits for it (pending
deliveries, the oldest since when, dead letters); buttons pause, resume and re-drive through the `/v1`
routes. Reads are the `WebhookService` calls `GET /v1/webhooks` and the webhook gauges answer with."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.console.pages import BASE, PageRoute, person, render
from api.timers import timers_runtime
from rulesvc.apikeys import Permission
from rulesvc.delivery.channels import parse_channel_url
from rulesvc.delivery.ports import Backlog, SubscriptionRecord

router = APIRouter(route_class=PageRoute, include_in_schema=False)

CHANNEL_LABELS = {"wecom": "企业微信群机器人", "dingtalk": "钉钉群机器人", "email": "邮件"}


def destination(url: str) -> str:
    """Where a subscription sends, as people read it: a channel's type and name, or a webhook's URL without
    its query (which may carry a token)."""
    channel = parse_channel_url(url)
    if channel is not None:
        kind, name = channel
        return f"{CHANNEL_LABELS.get(kind, kind)} {name}"
    parts = urlsplit(url)
    shown = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    return shown + ("?…" if parts.query else "")


def state(sub: SubscriptionRecord) -> str:
    """`active`, `paused` (by an operator, until resumed) or `removed` (a channel no longer configured)."""
    if sub.active:
        return "active"
    return "paused" if sub.paused or parse_channel_url(sub.url) is None else "removed"


def row(sub: SubscriptionRecord, backlog: Backlog) -> dict[str, Any]:
    return {
        "id": sub.id,
        "channel": parse_channel_url(sub.url) is not None,
        "destination": destination(sub.url),
        "description": sub.description,
        "kinds": sub.kinds,
        "action_types": sub.action_types,
        "state": state(sub),
        "pending": backlog.pending,
        "oldest_pending": backlog.oldest_pending,
        "dead": backlog.dead,
        "created_at": sub.created_at,
    }


@router.get(f"{BASE}/webhooks")
async def webhooks_page(request: Request) -> Response:
    principal = await person(request, Permission.WEBHOOKS_ADMIN)
    service = timers_runtime(request).webhooks

    def read() -> list[dict[str, Any]]:
        backlog = service.backlog()
        subs = sorted(service.subscriptions(), key=lambda s: (parse_channel_url(s.url) is None, s.id))
        return [row(s, backlog.get(s.id, Backlog())) for s in subs]

    rows = await run_in_threadpool(read)
    return render(request, "webhooks.html", principal, nav="webhooks", title="通知与订阅", rows=rows)
