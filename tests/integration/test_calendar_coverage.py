"""Calendar coverage through the service (both databases): past `confirmed_through` the shipped `cn` calendar
still keeps 2027's statutory days off, and every deadline computed there is marked provisional — in the
start_timer action, the stored timer, the decision detail, the feed and the SLA report."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from rulesvc.settings import Settings
from tests.integration.conftest import auth, engine_of, event, make_settings

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The loans below are dated up to three months ahead of today's clock: tolerate that skew here."""
    return make_settings(database_url, event_clock_skew=120 * 86400)


def created_loan(client: TestClient, key: str, event_id: str, occurred_at: str) -> dict[str, Any]:
    body = event(event_id, "loan", amount=300000)
    body["occurred_at"] = occurred_at
    response = client.post("/v1/events", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def start_timer(decision: dict[str, Any]) -> dict[str, Any]:
    [action] = [a for a in decision["actions"] if a["type"] == "start_timer"]
    return action


def stored_timer(app: FastAPI, ticket_id: str) -> Any:
    with engine_of(app).connect() as conn:
        return conn.execute(
            text("SELECT due_at, provisional, calendar_version FROM timers WHERE ticket_id = :t"),
            {"t": ticket_id},
        ).one()


def test_new_years_eve_loan_is_not_due_on_new_years_day(
    client: TestClient, app: FastAPI, keys: dict[str, str]
) -> None:
    decided = created_loan(client, keys["ingest"], "loan-2026-12-31", "2026-12-31T17:00:00+08:00")
    action = start_timer(decided)
    # 1 h on Thursday 12-31 (17:00–18:00); 元旦 (Fri 01-01) and the weekend are off; 3 h on Monday 01-04
    assert action["due_at"] == "2027-01-04T12:00:00+08:00"
    assert action["provisional"] is True and action["calendar_version"] == 1
    row = stored_timer(app, "L-loan-2026-12-31")
    assert bool(row.provisional) is True and row.calendar_version == 1

    detail = client.get(f"/v1/decisions/{decided['decision_id']}", headers=auth(keys["auditor"])).json()
    assert start_timer(detail)["provisional"] is True
    feed = client.get("/v1/actions", headers=auth(keys["all"])).json()["records"]
    [fed] = [r["action"] for r in feed if r["action"]["type"] == "start_timer"]
    assert fed["provisional"] is True and fed["due_at"] == "2027-01-04T12:00:00+08:00"


def test_chinese_new_years_eve_is_not_working_time(
    client: TestClient, app: FastAPI, keys: dict[str, str]
) -> None:
    decided = created_loan(client, keys["ingest"], "loan-2027-02-05", "2027-02-05T17:00:00+08:00")
    action = start_timer(decided)
    # 除夕 (Fri 02-05) is a statutory day off; 春节 02-06..02-08 and its 补假 02-09..02-10 too: the clock starts
    # on Thursday 02-11 09:00 and 4 working hours end at 14:00
    assert action["due_at"] == "2027-02-11T14:00:00+08:00"
    assert action["provisional"] is True
    assert bool(stored_timer(app, "L-loan-2027-02-05").provisional) is True


def test_confirmed_deadlines_carry_no_provisional_mark(
    client: TestClient, app: FastAPI, keys: dict[str, str]
) -> None:
    decided = created_loan(client, keys["ingest"], "loan-2026-12-30", "2026-12-30T09:00:00+08:00")
    action = start_timer(decided)
    assert action["due_at"] == "2026-12-30T14:00:00+08:00"
    assert "provisional" not in action
    assert bool(stored_timer(app, "L-loan-2026-12-30").provisional) is False


def test_readyz_and_metrics_show_the_days_of_coverage_left(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RULESVC_TODAY", "2026-12-04")
    body = client.get("/readyz").json()
    assert body["calendars"] == {"cn": {"confirmed_through": "2026-12-31", "days_left": 27}}
    metrics = client.get("/metrics").text
    assert 'rulesvc_calendar_coverage_days{calendar="cn"} 27.0' in metrics


def test_the_sla_report_counts_provisional_deadlines(client: TestClient, keys: dict[str, str]) -> None:
    created_loan(client, keys["ingest"], "loan-met-2027", "2027-01-04T09:00:00+08:00")
    done = event("loan-met-2027-done", "loan", amount=300000, stage="复审")
    done.update(type="ticket.updated", occurred_at="2027-01-04T10:00:00+08:00")
    done["ticket"]["id"] = "L-loan-met-2027"
    assert client.post("/v1/events", json=done, headers=auth(keys["ingest"])).status_code == 200
    report = client.get(
        "/v1/reports/sla",
        params={"from": "2027-01-01T00:00:00+08:00", "to": "2027-02-01T00:00:00+08:00"},
        headers=auth(keys["compliance"]),
    ).json()
    assert (report["total"]["met"], report["total"]["provisional"]) == (1, 1)
