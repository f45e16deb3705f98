"""Personal data generated in every position of an event (ids, known fields, free text, unknown fields)
never leaves unmasked to a role without `compliance`: decision detail (auditor, admin), the feed, webhook
bodies, error bodies and log lines. Compliance still reads the input in clear."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from rulesvc.decisions.service import Evaluator
from rulesvc.delivery.service import WebhookService
from rulesvc.masking import luhn
from rulesvc.sla.clock import SystemClock
from rulesvc.storage.evidence_reads import SqlEvidenceReader
from rulesvc.storage.webhook_store import SqlWebhookStore
from tests.integration.conftest import auth, make_settings


def _mobile(d: st.DrawFn) -> str:
    digits = (
        "1"
        + d(st.sampled_from("3456789"))
        + "".join(d(st.lists(st.sampled_from("0123456789"), min_size=9, max_size=9)))
    )
    spelling = d(st.sampled_from(["plain", "+86", "+86 spaced", "dashed"]))
    if spelling == "+86":
        return "+86" + digits
    if spelling == "+86 spaced":
        return f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"
    if spelling == "dashed":
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    return digits


def _id18(d: st.DrawFn) -> str:
    area = d(st.sampled_from(["110101", "310115", "440106"]))
    year = d(st.integers(1950, 2005))
    month = d(st.integers(1, 12))
    day = d(st.integers(1, 28))
    seq = d(st.integers(0, 999))
    check = d(st.sampled_from("0123456789X"))
    return f"{area}{year}{month:02d}{day:02d}{seq:03d}{check}"


def _id15(d: st.DrawFn) -> str:
    return (
        _id18(d)[:6]
        + f"{d(st.integers(50, 99))}{d(st.integers(1, 12)):02d}{d(st.integers(1, 28)):02d}"
        + f"{d(st.integers(0, 999)):03d}"
    )


def _card(d: st.DrawFn) -> str:
    body = "622202" + "".join(d(st.lists(st.sampled_from("0123456789"), min_size=9, max_size=9)))
    check = next(c for c in "0123456789" if luhn(body + c))
    return body + check


@st.composite
def personal(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["mobile", "id18", "id15", "card", "email"]))
    if kind == "mobile":
        return _mobile(draw)
    if kind == "id18":
        return _id18(draw)
    if kind == "id15":
        return _id15(draw)
    if kind == "card":
        return _card(draw)
    user = draw(st.from_regex(r"[a-z]{3,8}", fullmatch=True))
    return f"{user}@example.com"


def compact(text: str) -> str:
    return re.sub(r"[\s-]", "", text)


def leaked(secret: str, text: str) -> bool:
    """The clear value appears as written, or with its spaces/hyphens removed."""
    return secret in text or compact(secret) in compact(text)


@pytest.fixture
def app_and_keys(sqlite_url: str, book: Evaluator, tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    app = create_app(make_settings(sqlite_url), book=book)
    from rulesvc.apikeys import Role
    from rulesvc.decisions.service import create_api_key

    store = app.state.runtime.service.keys
    keys = {r.value: create_api_key(store, frozenset({r}), SystemClock())[1] for r in Role}
    return TestClient(app), keys


COUNTER = iter(range(1_000_000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=personal(), where=st.sampled_from(["event_id", "ticket_id", "remark", "mobile", "unknown"]))
def test_personal_data_never_leaves_unmasked(
    app_and_keys: tuple[TestClient, dict[str, str]],
    caplog: pytest.LogCaptureFixture,
    secret: str,
    where: str,
) -> None:
    client, keys = app_and_keys
    n = next(COUNTER)
    ticket: dict[str, object] = {
        "kind": "expense",
        "id": f"E-{n}",
        "expense_type": "差旅费",
        "amount": 120,
        "applicant_rank": "部门经理",
        "applicant": "赵敏",
    }
    event_id = f"ev-{n}"
    if where == "event_id":
        event_id = f"ev-{n}-{secret}"
    elif where == "ticket_id":
        ticket["id"] = f"E-{secret}-{n}"
    elif where == "remark":
        ticket["remark"] = f"客户说 {secret} 是联系方式"
    elif where == "mobile":
        ticket["mobile"] = secret
    else:
        ticket["x_note"] = secret
    body = {
        "event_id": event_id,
        "type": "ticket.created",
        "occurred_at": "2026-09-30T10:00:00+08:00",
        "ticket": ticket,
    }
    with caplog.at_level(logging.INFO):
        decided = client.post("/v1/events", json=body, headers=auth(keys["ingest"]))
        assert decided.status_code == 200, decided.text
        decision_id = decided.json()["decision_id"]
        for role in ("auditor", "admin"):
            detail = client.get(f"/v1/decisions/{decision_id}", headers=auth(keys[role]))
            assert detail.status_code == 200 and not leaked(secret, detail.text), (role, detail.text)
        feed = client.get("/v1/actions", headers=auth(keys["ingest"]))
        assert feed.status_code == 200 and not leaked(secret, feed.text), feed.text
        conflict = client.post(
            "/v1/events",
            json={**body, "occurred_at": "2026-09-30T11:00:00+08:00"},
            headers=auth(keys["ingest"]),
        )
        assert conflict.status_code == 409 and not leaked(secret, conflict.text), conflict.text
        clear = client.get(f"/v1/decisions/{decision_id}", headers=auth(keys["compliance"]))
        assert leaked(secret, clear.text)  # compliance reads the clear input
    assert not any(
        leaked(secret, record.getMessage()) for record in caplog.records if record.name != "rulesvc.access"
    )

    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    hooks = WebhookService(SqlWebhookStore(engine), SystemClock(), evidence=SqlEvidenceReader(engine))
    if not hooks.subscriptions():
        hooks.create_subscription("http://127.0.0.1:9/hook", secret="whsec_" + "p" * 32, from_start=True)
    hooks.fan_out()
    for claimed in hooks.claim(1000):
        _, sent = hooks.request_for(claimed)
        assert not leaked(secret, sent.decode("utf-8"))


@st.composite
def person_name(draw: st.DrawFn) -> str:
    """A name no format recognizes: only the field's class (个人信息) says it is personal data."""
    surname = draw(st.sampled_from("赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨"))
    given = draw(st.text(alphabet="明华建国秀英丽军平刚桂芳玉兰志强海燕", min_size=2, max_size=3))
    return surname + given


@pytest.fixture
def classes_app(database_url: str, book: Evaluator) -> tuple[TestClient, dict[str, str]]:
    """Field-name masking without `applicant`: what masks it is its kind's class alone."""
    from rulesvc.apikeys import Role
    from rulesvc.decisions.service import create_api_key
    from rulesvc.masking import DEFAULT_FIELD_RULES

    fields = {k: v for k, v in DEFAULT_FIELD_RULES.items() if k != "applicant"}
    app = create_app(make_settings(database_url, mask_fields=fields), book=book)
    store = app.state.runtime.service.keys
    keys = {r.value: create_api_key(store, frozenset({r}), SystemClock())[1] for r in Role}
    return TestClient(app), keys


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=st.one_of(personal(), person_name()))
def test_fields_of_class_personal_never_leave_unmasked_without_compliance(
    classes_app: tuple[TestClient, dict[str, str]], secret: str
) -> None:
    """`applicant` is declared `class: 个人信息` (rulesets/kinds/expense.yaml): whatever it holds, no role
    without compliance reads it in clear, even with field-name masking for it turned off."""
    client, keys = classes_app
    n = next(COUNTER)
    body = {
        "event_id": f"cls-{n}",
        "type": "ticket.created",
        "occurred_at": "2026-09-30T10:00:00+08:00",
        "ticket": {
            "kind": "expense",
            "id": f"E-cls-{n}",
            "expense_type": "差旅费",
            "amount": 120,
            "applicant_rank": "部门经理",
            "applicant": secret,
        },
    }
    decided = client.post("/v1/events", json=body, headers=auth(keys["ingest"]))
    assert decided.status_code == 200, decided.text
    decision_id = decided.json()["decision_id"]
    for role in ("auditor", "admin"):
        detail = client.get(f"/v1/decisions/{decision_id}", headers=auth(keys[role]))
        assert detail.status_code == 200 and not leaked(secret, detail.text), (role, detail.text)
    feed = client.get("/v1/actions", headers=auth(keys["ingest"]))
    assert feed.status_code == 200 and not leaked(secret, feed.text), feed.text
    clear = client.get(f"/v1/decisions/{decision_id}", headers=auth(keys["compliance"]))
    assert leaked(secret, clear.text)


def test_roles_read_the_classes_they_are_granted(database_url: str, book: Evaluator) -> None:
    """Grants are configured (RULESVC_FIELD_CLASS_GRANTS): an auditor granted 公开 and 内部 only no longer
    reads a loan's credit rating (敏感); the admin, granted 敏感 by default, still does."""
    from rulesvc.apikeys import Role
    from rulesvc.decisions.service import create_api_key

    app = create_app(make_settings(database_url, field_class_grants={"auditor": ["公开", "内部"]}), book=book)
    store = app.state.runtime.service.keys
    keys = {r.value: create_api_key(store, frozenset({r}), SystemClock())[1] for r in Role}
    client = TestClient(app)
    body = {
        "event_id": "cls-loan",
        "type": "ticket.created",
        "occurred_at": "2026-09-30T10:00:00+08:00",
        "ticket": {
            "kind": "loan",
            "id": "L-cls",
            "amount": 800000,
            "credit_rating": "BBB",
            "region": "上海浦东",
        },
    }
    decided = client.post("/v1/events", json=body, headers=auth(keys["ingest"]))
    assert decided.status_code == 200, decided.text
    decision_id = decided.json()["decision_id"]
    auditor = client.get(f"/v1/decisions/{decision_id}", headers=auth(keys["auditor"])).json()
    admin = client.get(f"/v1/decisions/{decision_id}", headers=auth(keys["admin"])).json()
    assert auditor["event"]["ticket"]["credit_rating"] == "****"
    assert auditor["event"]["ticket"]["region"] == "上海浦东"
    assert admin["event"]["ticket"]["credit_rating"] == "BBB"


CONTACT_RULESET = """\
ruleset: complaint-contact
kind: complaint
description: 投诉回访

tables: []

rules:
  - id: 短信回访
    on: [ticket.created]
    then:
      - notify: {to: ticket.mobile, channels: [sms], message: "请回访客户 {ticket.mobile}"}
      - start_timer: {timer: 回访, duration: 2h, calendar: "24x7", warnings: {预警: 90m}}
"""


def test_ticket_data_in_actions_is_masked_the_engines_timer_structure_is_not(
    database_url: str, tmp_path: Path
) -> None:
    """A notify to the customer's mobile copied from the ticket is masked for every reader without
    compliance (decision detail, search, the feed, a webhook body, the 为什么 page); the warning point 预警
    of the start_timer beside it reads 预警 everywhere, not as a masked person's name (预*)."""
    import shutil

    from rulesvc.apikeys import Role
    from rulesvc.decisions.service import create_api_key
    from tests.integration.conftest import RULESETS, load_book

    folder = tmp_path / "rules"
    (folder / "kinds").mkdir(parents=True)
    (folder / "calendars").mkdir()
    shutil.copy(RULESETS / "kinds" / "complaint.yaml", folder / "kinds")
    shutil.copy(RULESETS / "calendars" / "24x7.yaml", folder / "calendars")
    (folder / "complaint-contact.yaml").write_text(CONTACT_RULESET, encoding="utf-8")
    settings = make_settings(database_url, rulesets=folder)
    app = create_app(settings, book=load_book(settings))
    store = app.state.runtime.service.keys
    keys = {r.value: create_api_key(store, frozenset({r}), SystemClock())[1] for r in Role}
    mobile = "13912345678"
    body = {
        "event_id": "contact-1",
        "type": "ticket.created",
        "occurred_at": "2026-09-30T10:00:00+08:00",
        "ticket": {"kind": "complaint", "id": "C-contact-1", "owner": "王五", "mobile": mobile},
    }
    with TestClient(app) as client:
        decided = client.post("/v1/events", json=body, headers=auth(keys["ingest"]))
        assert decided.status_code == 200, decided.text
        decision_id = decided.json()["decision_id"]

        def actions_of(role: str) -> dict[str, dict[str, object]]:
            detail = client.get(f"/v1/decisions/{decision_id}", headers=auth(keys[role]))
            assert detail.status_code == 200, detail.text
            return {a["type"]: a for a in detail.json()["actions"]}

        for role in ("auditor", "admin"):
            shown = actions_of(role)
            assert shown["notify"]["to"] == "139****5678"
            assert shown["notify"]["message"] == "请回访客户 139****5678"
            assert shown["start_timer"]["warnings"][0]["name"] == "预警"
            assert shown["start_timer"]["timer"] == "回访"
        clear = actions_of("compliance")
        assert clear["notify"]["to"] == mobile and clear["start_timer"]["warnings"][0]["name"] == "预警"

        found = client.get(
            "/v1/decisions", params={"ticket_id": "C-contact-1"}, headers=auth(keys["auditor"])
        )
        [record] = found.json()["records"]
        assert not leaked(mobile, found.text) and record["actions"] == list(actions_of("auditor").values())

        feed = client.get("/v1/actions", headers=auth(keys["ingest"]))
        assert feed.status_code == 200 and not leaked(mobile, feed.text), feed.text
        fed = {item["action"]["type"]: item["action"] for item in feed.json()["records"]}
        assert fed["start_timer"]["warnings"][0]["name"] == "预警" and fed["notify"]["to"] == "139****5678"

        page = client.get(f"/console/decisions/{decision_id}", headers=auth(keys["auditor"]))
        assert page.status_code == 200 and not leaked(mobile, page.text)
        assert "「预警」 启动后 1h30m" in page.text and "预*" not in page.text

    engine = app.state.runtime.engine
    hooks = WebhookService(SqlWebhookStore(engine), SystemClock(), evidence=SqlEvidenceReader(engine))
    hooks.create_subscription("http://127.0.0.1:9/hook", secret="whsec_" + "p" * 32, from_start=True)
    hooks.fan_out()
    sent = [hooks.request_for(claimed)[1].decode("utf-8") for claimed in hooks.claim(1000)]
    assert sent and not any(leaked(mobile, text) for text in sent)
