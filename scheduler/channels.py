"""Sending to notification channels: the `Sender` of the webhook deliverer, which POSTs webhooks as before
and sends a `channel:<type>:<name>` delivery through its channel — a 企业微信 or 钉钉 group robot (HTTPS POST
of the robot's JSON, 钉钉 signed) or SMTP (smtplib; STARTTLS, or TLS from the first byte on SMTPS, when
configured). The messages themselves are built by `rulesvc.delivery.channels`; retries, dead letters and
order are the deliverer's, as for webhooks.

Every failure is a failed attempt, never raised: a transport error, a non-2xx answer, a robot's non-zero
`errcode` (rate limit, bad signature), an SMTP refusal. Error texts never carry a robot's key or token."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping

import httpx
import orjson

from rulesvc.delivery.channels import (
    Notice,
    dingtalk_payload,
    dingtalk_url,
    email_message,
    email_recipients,
    notice_of,
    parse_channel_url,
    robot_error,
    wecom_payload,
)
from rulesvc.delivery.service import SendResult
from rulesvc.settings import ChannelConfig
from rulesvc.sla.clock import Clock, SystemClock
from scheduler.delivery import Sender

SMTP_OK = 250

log = logging.getLogger("rulesvc.scheduler.channels")


class ChannelSender:
    """Webhooks through `webhooks`; notification channels through their configuration (by name)."""

    def __init__(
        self,
        webhooks: Sender,
        channels: Mapping[str, ChannelConfig],
        clock: Clock | None = None,
        millis: Callable[[], int] | None = None,
    ) -> None:
        self.webhooks = webhooks
        self.channels = dict(channels)
        self.clock = clock or SystemClock()
        self._millis = millis or (lambda: int(time.time() * 1000))
        self._client = httpx.Client(follow_redirects=False)

    def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        parsed = parse_channel_url(url)
        if parsed is None:
            return self.webhooks.send(url, headers, body)
        kind, name = parsed
        config = self.channels.get(name)
        if config is None or config.type != kind:
            return SendResult(
                None, f"通知渠道 {name!r}（{kind}）未在本 worker 配置（RULESVC_NOTIFY_CHANNELS）"
            )
        notice = notice_of(body)
        request_id = headers.get("X-Request-ID")
        extra = {"X-Request-ID": request_id} if request_id else {}
        if config.type == "email":
            return self._email(config, notice)
        assert config.webhook_url is not None
        webhook = config.webhook_url.get_secret_value()
        if config.type == "wecom":
            return self._robot(webhook, webhook, wecom_payload(config, notice), config.timeout, extra)
        secret = config.secret.get_secret_value() if config.secret is not None else None
        target = dingtalk_url(webhook, secret, self._millis())
        return self._robot(target, webhook, dingtalk_payload(config, notice), config.timeout, extra)

    def _robot(
        self, url: str, webhook: str, payload: object, timeout: float, headers: dict[str, str]
    ) -> SendResult:
        try:
            response = self._client.post(
                url,
                content=orjson.dumps(payload),
                headers={"Content-Type": "application/json; charset=utf-8", **headers},
                timeout=timeout,
            )
        except httpx.TimeoutException as exc:
            return SendResult(None, f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return SendResult(None, _without(f"{type(exc).__name__}: {exc}", url, webhook))
        if not 200 <= response.status_code < 300:
            return SendResult(response.status_code)
        return SendResult(response.status_code, robot_error(response.content))

    def _email(self, config: ChannelConfig, notice: Notice) -> SendResult:
        assert config.smtp_host is not None
        message = email_message(config, notice, self.clock.now())
        try:
            with _smtp(config) as smtp:
                if config.starttls:
                    smtp.starttls(context=_tls(config))
                if config.username:
                    password = config.password.get_secret_value() if config.password else ""
                    smtp.login(config.username, password)
                refused = smtp.send_message(
                    message, from_addr=config.sender, to_addrs=email_recipients(config, notice)
                )
        except smtplib.SMTPRecipientsRefused as exc:
            return SendResult(None, f"SMTP: every recipient refused: {sorted(exc.recipients)}")
        except smtplib.SMTPResponseException as exc:
            return SendResult(None, f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}")
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult(None, f"SMTP {type(exc).__name__}: {exc}")
        if refused:  # the others took it: a retry would send it to them again
            log.warning(
                "delivery %s: the SMTP server refused %s", notice.delivery_id, ", ".join(sorted(refused))
            )
        return SendResult(SMTP_OK)

    def close(self) -> None:
        self._client.close()
        self.webhooks.close()


def _tls(config: ChannelConfig) -> ssl.SSLContext:
    """The server's certificate checked against `tls_ca_file` (default: the system's CAs) and its name."""
    ca = str(config.tls_ca_file) if config.tls_ca_file is not None else None
    return ssl.create_default_context(cafile=ca)


def _smtp(config: ChannelConfig) -> smtplib.SMTP:
    """A connection to the channel's server: TLS from the first byte with `smtps`, else plain (maybe
    upgraded by STARTTLS)."""
    assert config.smtp_host is not None
    if config.smtps:
        return smtplib.SMTP_SSL(
            config.smtp_host, config.smtp_port, timeout=config.timeout, context=_tls(config)
        )
    return smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _without(text: str, *secrets: str) -> str:
    """An error text with the robot's URLs (their key or token) left out."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<webhook_url>")
    return text
