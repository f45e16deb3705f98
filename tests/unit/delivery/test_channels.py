"""Notification channels (pure): what a 企业微信 or 钉钉 robot and an e-mail receive for a notify/escalate
delivery, 钉钉's signature, which notify actions a channel takes, and how a robot's answer reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from rulesvc import exactjson
from rulesvc.delivery.channels import (
    accepts,
    channel_of,
    channel_url,
    dingtalk_payload,
    dingtalk_sign,
    dingtalk_url,
    email_message,
    notice_of,
    parse_channel_url,
    robot_error,
    wecom_payload,
)
from rulesvc.delivery.webhooks import delivery_body
from rulesvc.settings import ChannelConfig, Settings

NOTIFY = {
    "type": "notify",
    "to": "owner",
    "channels": ["sms", "email", "in_app"],
    "message": "投诉 C-1 已 1.5 小时未受理，请在 30 分钟内首次响应",
    "rule": "complaint-sla/投诉超时预警",
}
ESCALATE = {
    "type": "escalate",
    "to": "supervisor",
    "message": "投诉 C-1 已升级",
    "rule": "complaint-sla/投诉超时升级",
}


def body(action: dict[str, Any]) -> bytes:
    at = datetime(2026, 11, 2, 2, 31, tzinfo=UTC)  # 10:31 in Shanghai
    text = delivery_body("ch_ops-7", "ch_ops", 7, at, "C-1", "complaint", "d-1", action)
    return text.encode()


def config(**values: Any) -> ChannelConfig:
    return ChannelConfig.model_validate(values)


def test_dingtalk_signature_is_the_documented_one() -> None:
    # printf '1700000000000\nSECtest0123456789abcdef' | openssl dgst -sha256 -hmac SECtest0123456789abcdef -binary | base64
    expected = "/lfnxUUu80FwVTsIlv2F1cMGBb+PxEKAwYh/bsRxXcc="
    sign = dingtalk_sign("SECtest0123456789abcdef", 1_700_000_000_000)
    assert sign == "%2Flfnx" + "UUu80FwVTsIlv2F1cMGBb%2BPxEKAwYh%2FbsRxXcc%3D"  # urlencoded
    url = dingtalk_url(
        "https://oapi.dingtalk.com/robot/send?access_token=T", "SECtest0123456789abcdef", 1_700_000_000_000
    )
    query = parse_qs(urlsplit(url).query)
    assert query == {"access_token": ["T"], "timestamp": ["1700000000000"], "sign": [expected]}
    assert (
        dingtalk_url("https://x/robot/send?access_token=T", None, 1) == "https://x/robot/send?access_token=T"
    )


def test_the_notice_reads_in_chinese_with_shanghai_time() -> None:
    notice = notice_of(body(NOTIFY))
    assert notice.title == "提醒：工单 C-1" and notice.at == "2026-11-02 10:31"
    wecom = wecom_payload(config(type="wecom", webhook_url="https://w", msgtype="text"), notice)
    assert wecom == {
        "msgtype": "text",
        "text": {
            "content": "【rulesvc 提醒】投诉 C-1 已 1.5 小时未受理，请在 30 分钟内首次响应\n"
            "工单：C-1（complaint）\n对象：owner\n规则：complaint-sla/投诉超时预警\n时间：2026-11-02 10:31（北京时间）"
        },
    }
    markdown = wecom_payload(config(type="wecom", webhook_url="https://w"), notice_of(body(ESCALATE)))
    assert markdown["msgtype"] == "markdown"
    assert markdown["markdown"]["content"].startswith("### 升级：工单 C-1\n\n投诉 C-1 已升级\n")


def test_mentions_follow_each_robots_rules() -> None:
    mention = {"supervisor": ["13800000000"]}
    notice = notice_of(body(ESCALATE))
    wecom = wecom_payload(
        config(type="wecom", webhook_url="https://w", msgtype="text", mention=mention), notice
    )
    assert wecom["text"]["mentioned_mobile_list"] == ["13800000000"]
    ding = dingtalk_payload(config(type="dingtalk", webhook_url="https://d", mention=mention), notice)
    assert ding["msgtype"] == "markdown" and ding["markdown"]["title"] == "升级：工单 C-1"
    assert ding["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
    assert ding["markdown"]["text"].endswith("@13800000000")  # 钉钉 @-mentions only numbers in the text
    plain = dingtalk_payload(config(type="dingtalk", webhook_url="https://d", msgtype="text"), notice)
    assert plain["text"]["content"].startswith("【rulesvc 升级】") and plain["at"]["atMobiles"] == []


def test_notify_channels_choose_the_notify_actions() -> None:
    email = config(type="email", smtp_host="m", sender="a@b", to=["x@b"], notify_channels=["email"])
    assert accepts(email, NOTIFY) and accepts(email, ESCALATE)
    assert not accepts(email, {**NOTIFY, "channels": ["sms"]})
    assert accepts(config(type="wecom", webhook_url="https://w"), {**NOTIFY, "channels": []})


def test_email_message_has_a_stable_message_id_and_its_recipients() -> None:
    channel = config(
        type="email",
        smtp_host="m",
        sender="rulesvc@bank.cn",
        to=["desk@bank.cn"],
        recipients={"supervisor": ["lead@bank.cn", "desk@bank.cn"]},
    )
    message = email_message(channel, notice_of(body(ESCALATE)), datetime(2026, 11, 2, tzinfo=UTC))
    assert message["To"] == "desk@bank.cn, lead@bank.cn"
    assert message["Subject"] == "【rulesvc】升级：工单 C-1"
    assert message["Message-ID"] == "<ch_ops-7@rulesvc>" and message["X-Rulesvc-Delivery"] == "ch_ops-7"
    assert "规则：complaint-sla/投诉超时升级" in message.get_content()


def test_robot_answers() -> None:
    assert robot_error(b'{"errcode":0,"errmsg":"ok"}') is None
    assert robot_error(b'{"errcode":310000,"errmsg":"sign not match"}') == "errcode 310000: sign not match"
    assert robot_error(b"<html>") == "answer is not JSON"


def test_channel_urls_and_labels() -> None:
    url = channel_url(config(type="dingtalk", webhook_url="https://d"), "ops")
    assert url == "channel:dingtalk:ops" and parse_channel_url(url) == ("dingtalk", "ops")
    assert channel_of(url) == "dingtalk" and channel_of("https://tool/hook") == "webhook"
    assert parse_channel_url("https://tool/hook") is None


def test_configuration_is_checked() -> None:
    with pytest.raises(ValidationError, match="webhook_url"):
        config(type="wecom")
    with pytest.raises(ValidationError, match="smtp_host"):
        config(type="email", sender="a@b", to=["x@b"])
    mail = {"type": "email", "smtp_host": "mail.bank.cn", "sender": "a@b", "to": ["x@b"]}
    with pytest.raises(ValidationError, match="不能同时设置"):
        config(**mail, starttls=True, smtps=True)
    with pytest.raises(ValidationError, match="smtp_port 465 是 SMTP over TLS 端口"):
        config(**mail, smtp_port=465)  # a plain session would wait for the server's TLS hello
    assert config(**mail, smtp_port=465, smtps=True).smtps
    with pytest.raises(ValidationError, match="应符合"):
        Settings(notify_channels={"Bad Name": {"type": "wecom", "webhook_url": "https://w"}})  # type: ignore[dict-item]
    channels = Settings(
        notify_channels={"ops": {"type": "wecom", "webhook_url": "https://w?key=K"}}  # type: ignore[dict-item]
    ).channels()
    assert channels["ops"].actions == ["notify", "escalate"]
    assert "key=K" not in repr(channels)  # the robot's key is a secret
    assert exactjson.loads(body(NOTIFY))["action"]["channels"] == ["sms", "email", "in_app"]


def test_channels_from_a_file(tmp_path: Any) -> None:
    path = tmp_path / "channels.json"
    path.write_text(
        '{"ops": {"type": "dingtalk", "webhook_url": "https://d?access_token=T", "secret": "SECx"}}'
    )
    channels = Settings(notify_channels_file=path).channels()
    assert channels["ops"].type == "dingtalk" and channels["ops"].secret is not None
    path.write_text('{"Ops": {"type": "dingtalk", "webhook_url": "https://d"}}')
    with pytest.raises(ValueError, match="应符合"):
        Settings(notify_channels_file=path).channels()
