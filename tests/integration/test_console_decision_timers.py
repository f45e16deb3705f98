"""GET /v1/decisions/{id}/timers and the 为什么 page's timeline: a complaint's 首次响应 timer started, its
warning fired on time, its deadline fired late (a poll 10 minutes after it); the same for every reader
(no personal data). On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.search import DecisionQuery
from rulesvc.decisions.service import create_api_key
from rulesvc.rulebook import RuleBook
from rulesvc.sla.clock import SystemClock
from tests.integration.conftest import RULESETS, auth, make_settings
from tests.integration.test_timers_store import T0, Env
from tests.integration.timer_support import complaint, timer_url  # noqa: F401

BOOK = RuleBook.load([RULESETS])


@pytest.fixture
def fired(timer_url: str) -> Iterator[tuple[str, list[str]]]:  # noqa: F811
    """The database URL and the complaint's decision ids: created, warning fired, deadline fired."""
    env = Env(timer_url)
    try:
        created = env.events.send(complaint("c-1", "C-1", T0), T0)
        env.poll_at(T0 + timedelta(minutes=90, seconds=5))
        env.poll_at(T0 + timedelta(minutes=130))
        ids = [created.decision_id]
        newest_first = env.feed.search_decisions(DecisionQuery(ticket_id="C-1"))
        ids += [d.decision_id for d in reversed(newest_first)][1:]
        yield timer_url, ids
    finally:
        env.engine.dispose()


def test_the_timeline_of_a_complaint_on_the_api_and_the_page(fired: tuple[str, list[str]]) -> None:
    url, ids = fired
    assert len(ids) == 3
    app = create_app(make_settings(url), book=BOOK)
    with TestClient(app) as client:
        store = app.state.runtime.service.keys
        auditor = create_api_key(store, frozenset({Role.AUDITOR}), SystemClock(), "auditor")[1]
        ingest = create_api_key(store, frozenset({Role.INGEST}), SystemClock(), "ingest")[1]
        answer = client.get(f"/v1/decisions/{ids[0]}/timers", headers=auth(auditor))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        [timer] = body["timers"]
        assert (timer["timer"], timer["status"], timer["calendar"]) == ("首次响应", "finished", "24x7")
        points = [(m["kind"], m["state"], m["decision_id"]) for m in timer["marks"]]
        assert points == [("started", "", ids[0]), ("warning", "fired", ids[1]), ("due", "late", ids[2])]
        assert timer["marks"][2]["late_by"] == 600.0 and body["decisions"] == 3
        assert client.get(f"/v1/decisions/{ids[2]}/timers", headers=auth(auditor)).json() == body
        assert client.get("/v1/decisions/nope/timers", headers=auth(auditor)).status_code == 404
        missing = client.get(
            "/v1/decisions/00000000-0000-0000-0000-000000000000/timers", headers=auth(auditor)
        )
        assert missing.status_code == 404 and missing.json()["code"]
        assert client.get(f"/v1/decisions/{ids[0]}/timers", headers=auth(ingest)).status_code == 403

        page = client.get(f"/console/decisions/{ids[1]}", headers=auth(auditor))
        assert page.status_code == 200, page.text
        assert 'data-timer="首次响应"' in page.text and 'data-state="late"' in page.text
        assert "迟 600 秒" in page.text and "2026-11-02 09:00:00" in page.text

        created = client.get(f"/console/decisions/{ids[0]}", headers=auth(auditor)).text
        # The rule fired with no `when`: said in words, no empty condition table.
        assert "该规则没有 when 条件" in created and '<th scope="col">条件</th>' not in created
        # Action arguments read as people read them: Chinese labels, Beijing times, no Python repr.
        assert (
            '<dt title="warnings">预警</dt>' in created
            and "「预警」 启动后 1h30m（2026-11-02 10:30:00）" in created
        )
        assert '<dd data-arg="due_at">2026-11-02 11:00:00</dd>' in created
        assert "{&#39;" not in created and "[{" not in created and "&#39;:" not in created
        late = client.get(f"/console/decisions/{ids[1]}", headers=auth(auditor)).text
        assert (
            "短信、邮件、站内信" in late
            and "计时器 首次响应 的「预警」点（2026-11-02 10:30:00），迟 5 秒触发" in late
        )


def test_timers_due_soon_overdue_and_late_fires_reports(fired: tuple[str, list[str]]) -> None:
    url, _ = fired
    env = Env(url)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        env.events.send(complaint("c-2", "C-2", T0), T0)  # never polled: its warning is overdue now
        env.events.send(complaint("c-3", "C-3", now), now)  # its warning and deadline fall due today
    finally:
        env.engine.dispose()
    app = create_app(make_settings(url), book=BOOK)
    with TestClient(app) as client:
        store = app.state.runtime.service.keys
        auditor = auth(create_api_key(store, frozenset({Role.AUDITOR}), SystemClock(), "auditor")[1])
        due = client.get("/v1/reports/timers", params={"within_hours": 24}, headers=auditor)
        assert due.status_code == 200, due.text
        groups = {
            (g["key"]["ruleset"], g["key"]["timer"], g["key"]["point"]): g for g in due.json()["groups"]
        }
        warning = groups[("complaint-sla", "首次响应", "预警")]
        assert (warning["due_soon"], warning["overdue"]) == (1, 1)
        assert due.json()["total"] == {"due_soon": 1, "overdue": 1}
        short = client.get("/v1/reports/timers", params={"within_hours": 0.5}, headers=auditor).json()
        assert short["total"] == {"due_soon": 0, "overdue": 1}
        other = client.get("/v1/reports/timers", params={"ruleset": "loan-sla"}, headers=auditor).json()
        assert other["groups"] == [] and other["total"] == {"due_soon": 0, "overdue": 0}

        window = {"from": "2026-11-01T00:00:00+08:00", "to": "2026-11-03T00:00:00+08:00"}
        late = client.get("/v1/reports/late-fires", params=window, headers=auditor)
        assert late.status_code == 200, late.text
        fires = {g["key"]["point"]: g for g in late.json()["groups"]}
        assert fires["预警"]["key"]["ruleset"] == "complaint-sla"
        assert (fires["预警"]["fired"], fires["预警"]["late"]) == (1, 0)
        assert (fires["due"]["fired"], fires["due"]["late"], fires["due"]["max_late_seconds"]) == (
            1,
            1,
            600.0,
        )
        assert late.json()["total"] == {"fired": 2, "late": 1}
        as_csv = client.get("/v1/reports/late-fires", params={**window, "format": "csv"}, headers=auditor)
        assert as_csv.status_code == 200 and "迟到触发 (late)" in as_csv.content.decode("utf-8-sig")
        empty = client.get(
            "/v1/reports/late-fires", params={**window, "group": "没有这个组"}, headers=auditor
        ).json()
        assert empty["total"] == {"fired": 0, "late": 0}
        bad = client.get("/v1/reports/late-fires", params={**window, "to": window["from"]}, headers=auditor)
        assert bad.status_code == 422 and bad.json()["code"]
        assert (
            client.get("/v1/reports/timers", params={"within_hours": 0}, headers=auditor).status_code == 422
        )


def test_a_resumed_timer_moves_its_warning_point_on_the_api_and_the_page(timer_url: str) -> None:  # noqa: F811
    """Paused 30 minutes after the start and resumed 30 minutes later: the resume_timer answer lists the
    warning point where it falls now, and the timeline moves it with the deadline (10:30 → 11:00, 11:00 →
    11:30, 24x7), where the page shows it too."""
    env = Env(timer_url)
    try:
        created = env.events.send(complaint("c-p", "C-P", T0), T0)
        paused_at, resumed_at = T0 + timedelta(minutes=30), T0 + timedelta(minutes=60)
        env.events.send(complaint("c-p2", "C-P", paused_at, "ticket.paused"), paused_at)
        resumed = env.events.send(complaint("c-p3", "C-P", resumed_at, "ticket.resumed"), resumed_at)
    finally:
        env.engine.dispose()
    [resume] = [a for a in resumed.actions if a["type"] == "resume_timer"]
    assert datetime.fromisoformat(resume["due_at"]) == T0 + timedelta(minutes=150)
    [(name, at)] = [(w["name"], datetime.fromisoformat(w["at"])) for w in resume["warnings"]]
    assert (name, at) == ("预警", T0 + timedelta(minutes=120))
    app = create_app(make_settings(timer_url), book=BOOK)
    with TestClient(app) as client:
        store = app.state.runtime.service.keys
        auditor = create_api_key(store, frozenset({Role.AUDITOR}), SystemClock(), "auditor")[1]
        body = client.get(f"/v1/decisions/{created.decision_id}/timers", headers=auth(auditor)).json()
        [timer] = body["timers"]
        points = {
            m["kind"]: datetime.fromisoformat(m["at"])
            for m in timer["marks"]
            if m["kind"] in ("warning", "due")
        }
        assert points == {"warning": T0 + timedelta(minutes=120), "due": T0 + timedelta(minutes=150)}
        page = client.get(f"/console/decisions/{created.decision_id}", headers=auth(auditor)).text
        assert '2026-11-02 11:00:00</time>\n      <span class="what">预警「预警」' in page
