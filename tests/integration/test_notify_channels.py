"""Notification channels against real local receivers: an HTTP server playing the 企业微信 and 钉钉 group
robots (it checks the documented JSON, the key or token, and 钉钉's HMAC-SHA256 signature and timestamp, and
answers as they do) and an SMTP server (aiosmtpd). notify/escalate actions of a complaint's SLA reach each
channel they match, with the webhooks' guarantees: failed attempts (robot errcode, HTTP 502, SMTP 451) are
retried until delivered; a channel failing every attempt ends in a dead letter that re-drives once fixed."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi.testclient import TestClient

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.service import Evaluator, create_api_key
from rulesvc.delivery.webhooks import RetryPolicy
from rulesvc.rulebook import RuleBook
from rulesvc.settings import ChannelConfig, Settings
from rulesvc.sla.clock import VirtualClock
from scheduler.build import WorkerParts, build_worker
from scheduler.channels import ChannelSender
from scheduler.config import WorkerConfig
from scheduler.delivery import HttpSender
from tests.integration.conftest import RULESETS, auth, free_port, make_settings
from tests.integration.timer_support import Events, complaint, pg_url, timer_url, wait_until  # noqa: F401
from tests.tls_support import Pki, make_pki

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
BOOK = RuleBook.load([RULESETS])
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "a1b2c3d4e5"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef"
NOTICE_BODY = orjson.dumps(
    {
        "delivery_id": "ch_mail-1",
        "ticket_id": "C-1",
        "kind": "complaint",
        "at": "2026-11-02T02:31:00+00:00",
        "action": {"type": "notify", "to": "owner", "message": "投诉 C-1 已 1.5 小时未受理"},
    }
)


@dataclass
class Robots:
    """Both robots on one local server. `script[path]`: answers to give first, one per request (an int is an
    HTTP status, a dict the JSON answer); then `{"errcode": 0, "errmsg": "ok"}`. `problems` lists every
    request that broke the documented format."""

    url: str = ""
    ding_secret: str = DING_SECRET
    script: dict[str, list[Any]] = field(default_factory=dict)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, path: str, query: dict[str, list[str]], payload: Any) -> dict[str, Any] | None:
        """None when the request is as documented, else the robot's error answer."""
        if path == "/cgi-bin/webhook/send":
            if query.get("key") != [WECOM_KEY]:
                return {"errcode": 93000, "errmsg": "invalid webhook url"}
            kind = payload.get("msgtype")
            content = (payload.get(kind) or {}).get("content") if kind in ("text", "markdown") else None
            limit = 2048 if kind == "text" else 4096
            if not isinstance(content, str) or not content or len(content.encode()) > limit:
                return {"errcode": 40008, "errmsg": "invalid message type"}
            return None
        if query.get("access_token") != [DING_TOKEN]:
            return {"errcode": 300001, "errmsg": "token is not exist"}
        stamp = query.get("timestamp", [""])[0]
        if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > 3600 * 1000:
            return {"errcode": 310000, "errmsg": "invalid timestamp"}
        expected = base64.b64encode(
            hmac.new(
                self.ding_secret.encode(), f"{stamp}\n{self.ding_secret}".encode(), hashlib.sha256
            ).digest()
        ).decode()
        if query.get("sign") != [expected]:
            return {"errcode": 310000, "errmsg": "sign not match"}
        kind = payload.get("msgtype")
        if kind == "text":
            ok = isinstance((payload.get("text") or {}).get("content"), str)
        else:
            markdown = payload.get("markdown") or {}
            ok = kind == "markdown" and bool(markdown.get("title")) and bool(markdown.get("text"))
        at = payload.get("at") or {}
        if not ok or not isinstance(at.get("atMobiles", []), list):
            return {"errcode": 40035, "errmsg": "invalid message"}
        return None


@pytest.fixture
def robots() -> Iterator[Robots]:
    state = Robots()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            payload = orjson.loads(body)
            if not self.headers.get("Content-Type", "").startswith("application/json"):
                state.problems.append(f"{parts.path}: Content-Type {self.headers.get('Content-Type')}")
            with state.lock:
                state.received.setdefault(parts.path, []).append(payload)
                scripted = state.script.get(parts.path) or []
                step = scripted.pop(0) if scripted else None
            answer = state.check(parts.path, parse_qs(parts.query), payload)
            if answer is not None:
                state.problems.append(f"{parts.path}: {answer}")
            status = 200
            if isinstance(step, int):
                status, answer = step, {"message": "bad gateway"}
            elif isinstance(step, dict) and answer is None:
                answer = step
            content = orjson.dumps(answer or {"errcode": 0, "errmsg": "ok"})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """An SMTP server's DATA handler: `script` answers first (e.g. "451 4.3.0 try again later"), then 250."""

    port: int = 0
    script: list[str] = field(default_factory=list)
    attempts: int = 0
    messages: list[tuple[str, list[str], email.message.EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.script:
            return self.script.pop(0)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port, loop=asyncio.new_event_loop())
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def worker(url: str, channels: dict[str, ChannelConfig], attempts: int, clock: VirtualClock) -> WorkerParts:
    return build_worker(
        url,
        BOOK,
        Settings().mask_policy(),
        config=WorkerConfig(),
        retry=RetryPolicy(max_attempts=attempts, base_seconds=0.01, cap_seconds=0.02, timeout_seconds=2),
        clock=clock,
        channels=channels,
    )


def late_complaint(parts: WorkerParts, clock: VirtualClock, ticket: str, minutes: int = 121) -> None:
    """A complaint nobody accepts: at 90 minutes `notify` (sms, email, in_app), at 120 `escalate`."""
    Events(parts.engine, BOOK).send(complaint(f"e-{ticket}", ticket, T0), T0)
    clock.advance(timedelta(minutes=91))
    parts.poller.poll()
    if minutes > 120:
        clock.advance(timedelta(minutes=minutes - 91))
        parts.poller.poll()


def deliver_until(parts: WorkerParts, done: Any) -> None:
    wait_until(lambda: (parts.deliverer.run_once(), done())[1], timeout=30)


def attempts(parts: WorkerParts, channel: str, outcome: str) -> float:
    return parts.metrics.value("rulesvc_webhook_attempts", (("channel", channel), ("outcome", outcome)))


def test_each_channel_gets_its_actions_after_retries(
    timer_url: str,  # noqa: F811
    robots: Robots,
    mailbox: Mailbox,
) -> None:
    settings = Settings(
        notify_channels={  # type: ignore[arg-type]
            "wecom-ops": {
                "type": "wecom",
                "webhook_url": f"{robots.url}/cgi-bin/webhook/send?key={WECOM_KEY}",
                "actions": ["escalate"],
                "msgtype": "text",
                "mention": {"supervisor": ["13800000000"]},
            },
            "ding-ops": {
                "type": "dingtalk",
                "webhook_url": f"{robots.url}/robot/send?access_token={DING_TOKEN}",
                "secret": DING_SECRET,
                "notify_channels": ["in_app"],
            },
            "mail": {
                "type": "email",
                "smtp_host": "127.0.0.1",
                "smtp_port": mailbox.port,
                "sender": "rulesvc@bank.cn",
                "to": ["complaint-desk@bank.cn"],
                "recipients": {"supervisor": ["complaint-lead@bank.cn"]},
                "notify_channels": ["email"],
                "kinds": ["complaint"],
            },
        }
    )
    robots.script = {
        "/cgi-bin/webhook/send": [{"errcode": 45009, "errmsg": "api freq out of limit"}],
        "/robot/send": [502],
    }
    mailbox.script = ["451 4.3.0 try again later"]
    clock = VirtualClock(T0)
    parts = worker(timer_url, settings.channels(), 5, clock)
    try:
        late_complaint(parts, clock, "C-7")
        deliver_until(
            parts,
            lambda: (
                len(robots.received.get("/cgi-bin/webhook/send", [])) == 2
                and len(robots.received.get("/robot/send", [])) == 3
                and len(mailbox.messages) == 2
            ),
        )
        wait_until(lambda: not parts.webhooks.deliveries(None, "pending", 0, 100), timeout=10)
    finally:
        parts.worker.stop()

    assert robots.problems == []  # every request as documented: key, token, signature, JSON
    wecom = robots.received["/cgi-bin/webhook/send"]
    assert wecom[0] == wecom[1]  # the retry sends the same message
    assert wecom[1]["msgtype"] == "text" and wecom[1]["text"]["mentioned_mobile_list"] == ["13800000000"]
    assert wecom[1]["text"]["content"].startswith("【rulesvc 升级】投诉 C-7 已超过 2 小时未首次响应")
    ding = robots.received["/robot/send"]
    assert [p["markdown"]["title"] for p in ding] == ["提醒：工单 C-7"] * 2 + ["升级：工单 C-7"]
    assert "规则：complaint-sla/投诉超时预警" in ding[0]["markdown"]["text"]

    (first_from, first_to, first), (_, second_to, second) = mailbox.messages
    assert first_from == "rulesvc@bank.cn" and first_to == ["complaint-desk@bank.cn"]
    assert second_to == ["complaint-desk@bank.cn", "complaint-lead@bank.cn"]
    assert (
        first["Subject"] == "【rulesvc】提醒：工单 C-7" and second["Subject"] == "【rulesvc】升级：工单 C-7"
    )
    assert "投诉 C-7 已 1.5 小时未受理" in first.get_content()
    assert mailbox.attempts == 3

    delivered = parts.webhooks.deliveries(None, "delivered", 0, 100)
    assert sorted((d.subscription_id, d.action_type, d.attempts) for d in delivered) == [
        ("ch_ding-ops", "escalate", 1),
        ("ch_ding-ops", "notify", 2),
        ("ch_mail", "escalate", 1),
        ("ch_mail", "notify", 2),
        ("ch_wecom-ops", "escalate", 2),
    ]
    for channel in ("wecom", "dingtalk", "email"):
        assert attempts(parts, channel, "failed") == 1
    assert attempts(parts, "wecom", "delivered") == 1
    assert attempts(parts, "dingtalk", "delivered") == attempts(parts, "email", "delivered") == 2
    subs = {s.id: s for s in parts.webhooks.subscriptions()}
    assert subs["ch_mail"].url == "channel:email:mail" and subs["ch_mail"].kinds == ("complaint",)


def test_a_channel_failing_every_attempt_ends_in_a_dead_letter_then_redrives(
    timer_url: str,  # noqa: F811
    robots: Robots,
    mailbox: Mailbox,
) -> None:
    channels = {
        "ding": ChannelConfig.model_validate(
            {
                "type": "dingtalk",
                "webhook_url": f"{robots.url}/robot/send?access_token={DING_TOKEN}",
                "secret": DING_SECRET,
                "actions": ["notify"],
                "msgtype": "text",
            }
        ),
        "mail": ChannelConfig.model_validate(
            {
                "type": "email",
                "smtp_host": "127.0.0.1",
                "smtp_port": mailbox.port,
                "sender": "rulesvc@bank.cn",
                "to": ["desk@bank.cn"],
                "actions": ["notify"],
            }
        ),
    }
    robots.ding_secret = "SECthe-robot-was-given-another-secret"  # every signature is refused
    mailbox.script = ["550 5.1.1 mailbox unavailable"] * 3
    clock = VirtualClock(T0)
    parts = worker(timer_url, channels, 3, clock)
    try:
        late_complaint(parts, clock, "C-9", minutes=91)
        deliver_until(parts, lambda: len(parts.webhooks.dead_letters(None, 0, 10)) == 2)
        dead = {d.subscription_id: d for d in parts.webhooks.dead_letters(None, 0, 10)}
        assert (
            dead["ch_ding"].attempts == 3 and dead["ch_ding"].last_error == "errcode 310000: sign not match"
        )
        assert dead["ch_mail"].attempts == 3 and (dead["ch_mail"].last_error or "").startswith("SMTP 550")
        assert len(robots.received["/robot/send"]) == 3 and mailbox.attempts == 3
        assert attempts(parts, "dingtalk", "dead") == attempts(parts, "email", "dead") == 1
        assert attempts(parts, "dingtalk", "failed") == attempts(parts, "email", "failed") == 2

        robots.ding_secret = DING_SECRET  # fixed: the dead letters re-drive
        assert parts.webhooks.redrive("ch_ding") == 1 and parts.webhooks.redrive("ch_mail") == 1
        deliver_until(parts, lambda: len(parts.webhooks.deliveries(None, "delivered", 0, 10)) == 2)
    finally:
        parts.worker.stop()
    assert robots.received["/robot/send"][-1]["text"]["content"].startswith("【rulesvc 提醒】投诉 C-9")
    assert (
        len(mailbox.messages) == 1
        and mailbox.messages[0][2]["X-Rulesvc-Delivery"] == dead["ch_mail"].delivery_id
    )


def test_a_channel_removed_from_the_settings_is_paused(timer_url: str, robots: Robots) -> None:  # noqa: F811
    wecom = ChannelConfig.model_validate(
        {"type": "wecom", "webhook_url": f"{robots.url}/cgi-bin/webhook/send?key={WECOM_KEY}"}
    )
    clock = VirtualClock(T0)
    first = worker(timer_url, {"ops": wecom}, 3, clock)
    first.worker.stop()
    again = worker(timer_url, {}, 3, clock)
    try:
        (sub,) = again.webhooks.subscriptions()
        assert sub.id == "ch_ops" and not sub.active
        assert again.webhooks.active_subscription_ids() == []
    finally:
        again.worker.stop()
    back = worker(timer_url, {"ops": wecom.model_copy(update={"kinds": ["complaint"]})}, 3, clock)
    try:
        (sub,) = back.webhooks.subscriptions()
        assert sub.active and sub.kinds == ("complaint",)
    finally:
        back.worker.stop()


def test_a_channel_paused_through_the_api_stays_paused_over_restarts(
    pg_url: str,  # noqa: F811
    book: Evaluator,
    robots: Robots,
) -> None:
    """A worker start brings a channel in line with its settings; it does not resume a channel an operator
    paused (PATCH /v1/webhooks/ch_<name>): actions emitted meanwhile wait, and are sent once resumed."""
    wecom = ChannelConfig.model_validate(
        {"type": "wecom", "webhook_url": f"{robots.url}/cgi-bin/webhook/send?key={WECOM_KEY}"}
    )
    clock = VirtualClock(T0)
    sent = "/cgi-bin/webhook/send"
    app = create_app(make_settings(pg_url), book=book)
    admin = auth(create_api_key(app.state.runtime.service.keys, frozenset({Role.ADMIN}), clock, "ops")[1])
    with TestClient(app) as api:
        first = worker(pg_url, {"ops": wecom}, 3, clock)
        first.worker.stop()
        paused = api.patch("/v1/webhooks/ch_ops", json={"active": False}, headers=admin)
        assert paused.status_code == 200, paused.text
        assert paused.json()["active"] is False and paused.json()["paused"] is True

        for changed in (
            {},
            {"kinds": ["complaint"]},
        ):  # restarted as configured, then with its settings changed
            again = worker(pg_url, {"ops": wecom.model_copy(update=changed)}, 3, clock)
            try:
                sub = again.webhooks.subscription("ch_ops")
                assert (sub.active, sub.paused) == (False, True)
                assert sub.kinds == tuple(changed.get("kinds", ()))  # the settings still update it
                if not changed:
                    late_complaint(again, clock, "C-21", minutes=91)  # a notify while paused
                again.deliverer.run_once()
                assert sent not in robots.received and again.webhooks.deliveries("ch_ops", None, 0, 10) == []
            finally:
                again.worker.stop()
        listed = api.get("/v1/webhooks/ch_ops", headers=admin).json()
        assert (listed["active"], listed["paused"]) == (False, True)
        dead = api.get("/v1/webhooks/dead-letters", params={"subscription_id": "ch_ops"}, headers=admin)
        assert dead.status_code == 200 and dead.json()["deliveries"] == []
        unknown = api.post("/v1/webhooks/dead-letters/ch_ops-1/redrive", headers=admin)
        assert unknown.status_code == 404  # a channel's delivery id is one the routes take

        resumed = api.patch("/v1/webhooks/ch_ops", json={"active": True}, headers=admin)
        assert (resumed.json()["active"], resumed.json()["paused"]) == (True, False)
        back = worker(pg_url, {"ops": wecom}, 3, clock)
        try:
            assert back.webhooks.subscription("ch_ops").active  # and a resumed channel stays resumed
            deliver_until(back, lambda: len(robots.received.get(sent, [])) == 1)
        finally:
            back.worker.stop()
    assert "C-21" in robots.received[sent][0]["markdown"]["content"] and robots.problems == []


def server_tls(pki: Pki) -> ssl.SSLContext:
    """The SMTP server's TLS: the suite's certificate for 127.0.0.1, signed by its test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    return context


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_email_over_tls_with_login(timer_url: str, tmp_path: Path, mode: str) -> None:  # noqa: F811
    """STARTTLS (the server refuses MAIL FROM before it) and SMTPS (TLS from the first byte, port 465 in
    production): the server's certificate is checked against the configured CA and refused against another."""
    pki = make_pki(tmp_path)
    box = Mailbox(port=free_port())

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"rulesvc", b"s3cret")
        return AuthResult(success=ok, handled=False)

    tls: dict[str, Any] = (
        {"tls_context": server_tls(pki), "require_starttls": True}
        if mode == "starttls"
        # aiosmtpd counts only a STARTTLS upgrade as TLS for AUTH; this session is TLS from its first byte
        else {"ssl_context": server_tls(pki), "auth_require_tls": False}
    )
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        loop=asyncio.new_event_loop(),
        authenticator=authenticator,
        auth_required=True,
        **tls,
    )
    controller.start()
    config = {
        "type": "email",
        "smtp_host": "127.0.0.1",
        "smtp_port": box.port,
        mode: True,
        "username": "rulesvc",
        "password": "s3cret",
        "sender": "rulesvc@bank.cn",
        "to": ["desk@bank.cn"],
        "actions": ["notify"],
    }
    try:
        for untrusted in ({}, {"tls_ca_file": str(pki.wrong_ca_file)}):  # the system's CAs, another CA
            sender = ChannelSender(
                HttpSender(1), {"mail": ChannelConfig.model_validate({**config, **untrusted})}
            )
            refused = sender.send("channel:email:mail", {}, NOTICE_BODY)
            assert not refused.ok and "CERTIFICATE_VERIFY_FAILED" in (refused.error or "")
            sender.close()

        channels = {"mail": ChannelConfig.model_validate({**config, "tls_ca_file": str(pki.ca_file)})}
        clock = VirtualClock(T0)
        parts = worker(timer_url, channels, 3, clock)
        try:
            late_complaint(parts, clock, "C-11", minutes=91)
            deliver_until(parts, lambda: len(box.messages) == 1)
        finally:
            parts.worker.stop()
    finally:
        controller.stop()
    assert box.messages[0][2]["Subject"] == "【rulesvc】提醒：工单 C-11"
    assert attempts(parts, "email", "delivered") == 1 and attempts(parts, "email", "failed") == 0


def test_only_workers_configured_for_a_channel_serve_it(timer_url: str, robots: Robots) -> None:  # noqa: F811
    channels = {
        "ding": ChannelConfig.model_validate(
            {
                "type": "dingtalk",
                "webhook_url": f"{robots.url}/robot/send?access_token={DING_TOKEN}",
                "secret": DING_SECRET,
                "notify_channels": ["in_app"],
            }
        )
    }
    clock = VirtualClock(T0)
    configured = worker(timer_url, channels, 3, clock)
    other = build_worker(  # a worker started without the channels' settings
        timer_url,
        BOOK,
        Settings().mask_policy(),
        retry=RetryPolicy(max_attempts=3, base_seconds=0.01, cap_seconds=0.02, timeout_seconds=2),
        clock=clock,
    )
    try:
        late_complaint(configured, clock, "C-13", minutes=91)
        other.deliverer.run_once()  # neither fans out (it could not apply notify_channels) nor sends
        assert configured.webhooks.deliveries("ch_ding", None, 0, 10) == []
        assert "/robot/send" not in robots.received
        deliver_until(configured, lambda: len(robots.received.get("/robot/send", [])) == 1)
    finally:
        configured.worker.stop()
        other.worker.stop()
    assert robots.problems == []
