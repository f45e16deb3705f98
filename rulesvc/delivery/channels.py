"""Notification channels, pure: what a 企业微信 or 钉钉 group robot, or an e-mail, receives for one `notify` or
`escalate` action of the feed, and how a robot's answer reads.

A configured channel (`RULESVC_NOTIFY_CHANNELS`, docs/notifications.md) is a webhook subscription of its own
(`ch_<name>`, its URL `channel:<type>:<name>`): the same deliveries, per-ticket order, retries with backoff,
dead letters and re-drive as every webhook (`rulesvc.delivery.service`); only the last step, turning the
stored delivery body into a robot message or an e-mail and sending it, is the channel's (`scheduler.channels`).

Formats, as the vendors document them:
- 企业微信 group robot: POST `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`, JSON
  `{"msgtype": "text", "text": {"content", "mentioned_mobile_list"}}` or
  `{"msgtype": "markdown", "markdown": {"content"}}`; answers `{"errcode": 0, "errmsg": "ok"}`.
- 钉钉 group robot: POST `https://oapi.dingtalk.com/robot/send?access_token=TOKEN`, with 加签 the query also
  carries `timestamp` (ms) and `sign` = urlencode(base64(HMAC-SHA256(secret, timestamp + "\\n" + secret)));
  JSON `{"msgtype": "text", "text": {"content"}, "at": {"atMobiles", "isAtAll"}}` or
  `{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {...}}`; answers `{"errcode": 0, ...}`.
- E-mail: a plain-text UTF-8 message whose `Message-ID` is derived from the delivery id (the same on every
  retry, so a mailbox can tell a re-sent message).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import quote_plus, urlsplit
from zoneinfo import ZoneInfo

import orjson

from rulesvc.settings import ChannelConfig

CHANNEL_SCHEME = "channel:"
CHANNEL_PREFIX = "ch_"
WEBHOOK = "webhook"
"""The `channel` label of plain webhook deliveries (the metrics' other values are the channel types)."""
SHANGHAI = ZoneInfo("Asia/Shanghai")
ACTION_TITLES = {"notify": "提醒", "escalate": "升级"}


def subscription_id(name: str) -> str:
    return CHANNEL_PREFIX + name


def channel_url(config: ChannelConfig, name: str) -> str:
    return f"{CHANNEL_SCHEME}{config.type}:{name}"


def parse_channel_url(url: str) -> tuple[str, str] | None:
    """(type, name) of a channel's URL; None for a webhook's."""
    if not url.startswith(CHANNEL_SCHEME):
        return None
    kind, _, name = url[len(CHANNEL_SCHEME) :].partition(":")
    return kind, name


def channel_of(url: str) -> str:
    """The `channel` label: the channel's type, or `webhook`."""
    parsed = parse_channel_url(url)
    return parsed[0] if parsed is not None else WEBHOOK


def accepts(config: ChannelConfig, action: Mapping[str, Any]) -> bool:
    """Whether the channel takes this action beyond its subscription's filters (kinds, action types): a
    `notify` must name one of the channel's `notify_channels`, when it lists any."""
    if action.get("type") != "notify" or not config.notify_channels:
        return True
    named = action.get("channels") or []
    return any(channel in named for channel in config.notify_channels)


@dataclass(frozen=True)
class Notice:
    """What a person reads, taken from a delivery body (already masked for the channel)."""

    action_type: str
    title: str
    message: str
    to: str
    ticket_id: str
    kind: str
    rule: str
    at: str
    """When the action was emitted, Asia/Shanghai, e.g. 2026-11-02 10:31."""
    delivery_id: str

    def lines(self) -> list[tuple[str, str]]:
        return [
            ("工单", f"{self.ticket_id}（{self.kind}）" if self.kind else self.ticket_id),
            ("对象", self.to),
            ("规则", self.rule),
            ("时间", f"{self.at}（北京时间）"),
        ]


def notice_of(body: bytes | str) -> Notice:
    record = orjson.loads(body)
    action: Mapping[str, Any] = record.get("action") or {}
    action_type = str(action.get("type", ""))
    ticket_id = str(record.get("ticket_id", ""))
    at = str(record.get("at", ""))
    try:
        shown = datetime.fromisoformat(at).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        shown = at
    return Notice(
        action_type=action_type,
        title=f"{ACTION_TITLES.get(action_type, action_type)}：工单 {ticket_id}",
        message=str(action.get("message") or ""),
        to=str(action.get("to") or ""),
        ticket_id=ticket_id,
        kind=str(record.get("kind") or ""),
        rule=str(action.get("rule") or ""),
        at=shown,
        delivery_id=str(record.get("delivery_id", "")),
    )


def text_of(notice: Notice) -> str:
    head = f"【rulesvc {ACTION_TITLES.get(notice.action_type, notice.action_type)}】{notice.message}"
    return "\n".join([head, *(f"{label}：{value}" for label, value in notice.lines() if value)])


def markdown_of(notice: Notice) -> str:
    head = f"### {notice.title}\n\n{notice.message}\n"
    rows = "\n".join(f"> {label}：{value}  " for label, value in notice.lines() if value)
    return f"{head}\n{rows}\n"


def mentioned(config: ChannelConfig, notice: Notice) -> list[str]:
    return list(config.mention.get(notice.to, []))


def wecom_payload(config: ChannelConfig, notice: Notice) -> dict[str, Any]:
    """企业微信 group robot message (markdown cannot @-mention by mobile: the mentions are written out)."""
    mobiles = mentioned(config, notice)
    if config.msgtype == "text":
        text: dict[str, Any] = {"content": text_of(notice)}
        if mobiles:
            text["mentioned_mobile_list"] = mobiles
        return {"msgtype": "text", "text": text}
    content = markdown_of(notice) + "".join(f"<@{mobile}>" for mobile in mobiles)
    return {"msgtype": "markdown", "markdown": {"content": content}}


def dingtalk_payload(config: ChannelConfig, notice: Notice) -> dict[str, Any]:
    """钉钉 group robot message; a mobile is @-mentioned when the text names it (钉钉's rule)."""
    mobiles = mentioned(config, notice)
    at = {"atMobiles": mobiles, "isAtAll": False}
    mentions = "".join(f" @{mobile}" for mobile in mobiles)
    if config.msgtype == "text":
        return {"msgtype": "text", "text": {"content": text_of(notice) + mentions}, "at": at}
    return {
        "msgtype": "markdown",
        "markdown": {"title": notice.title, "text": markdown_of(notice) + mentions},
        "at": at,
    }


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """钉钉 加签: urlencode(base64(HMAC-SHA256(key=secret, timestamp + "\\n" + secret)))."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def dingtalk_url(webhook_url: str, secret: str | None, timestamp_ms: int) -> str:
    if not secret:
        return webhook_url
    joiner = "&" if urlsplit(webhook_url).query else "?"
    return f"{webhook_url}{joiner}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def robot_error(content: bytes) -> str | None:
    """None when a robot's answer says ok (`errcode` 0), else what it said (`errcode 310000: sign not match`)."""
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        return "answer is not JSON"
    code = answer.get("errcode") if isinstance(answer, dict) else None
    if code == 0:
        return None
    return f"errcode {code}: {answer.get('errmsg', '') if isinstance(answer, dict) else ''}"


def email_recipients(config: ChannelConfig, notice: Notice) -> list[str]:
    chosen = [*config.to, *config.recipients.get(notice.to, [])]
    return list(dict.fromkeys(chosen))


def email_message(config: ChannelConfig, notice: Notice, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{config.subject_prefix}{notice.title}"
    message["From"] = config.sender or ""
    message["To"] = ", ".join(email_recipients(config, notice))
    message["Date"] = formatdate(now.timestamp(), localtime=False)
    message["Message-ID"] = f"<{_message_id(notice.delivery_id)}@rulesvc>"
    message["X-Rulesvc-Delivery"] = notice.delivery_id
    message.set_content(text_of(notice) + "\n", charset="utf-8")
    return message


def _message_id(delivery_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", delivery_id) or "delivery"
