"""GET /v1/decisions/{id}/timers and the 为什么 page's timeline: a complaint's 首次响应 timer started, its
warning fired on time, its deadline fired late (a poll 10 minutes after it); the same for every reader
(no personal data). On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

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
