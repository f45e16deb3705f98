"""The ticket reports aggregated by PostgreSQL give the same groups as the Python functions over the same
stored records (approvals, distributions by day / week / month and by a nested field, stages, workload,
with and without filters); SQLite leaves them to Python."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from rulesvc.decisions import ticket_reports
from rulesvc.decisions.ticket_reports import TicketReport
from tests.integration.conftest import auth, event

START = datetime.fromisoformat("2026-01-01T00:00:00+08:00")  # decision time: the tests run now
END = datetime.fromisoformat("2030-01-01T00:00:00+08:00")


def seed(client: TestClient, ingest: str) -> None:
    bodies: list[dict[str, Any]] = []
    for n, (amount, rank) in enumerate(((4999.99, "部门经理"), (6000, "总监"), (100, "员工"), (0, "总监"))):
        body = event(f"exp-{n}", "expense", amount=amount, applicant_rank=rank)
        body["occurred_at"] = f"2026-{9 + n % 3:02d}-{1 + 7 * n:02d}T23:30:00+08:00"
        bodies.append(body)
    stages = [("初审", "2026-09-30T10:00:00+08:00"), ("复审", "2026-10-01T09:00:00+08:00")]
    stages += [("初审", "2026-10-02T15:30:00+08:00"), ("终审", "2026-10-08T08:00:00+08:00")]
    for n, (stage, at) in enumerate(stages):
        body = event(f"loan-{n}", "loan", id="L-1", stage=stage, owner=f"经理{n % 2}")
        body.update(type="ticket.created" if n == 0 else "ticket.updated", occurred_at=at)
        bodies.append(body)
    for n, region in enumerate(("上海浦东", "北京朝阳", "深圳南山")):
        body = event(f"loan-r{n}", "loan", region=region, amount=20000 * (n + 1) ** 3)
        body["occurred_at"] = f"2026-10-{10 + n:02d}T01:00:00+08:00"
        bodies.append(body)
    complaint = event("c-1", "complaint")
    complaint["occurred_at"] = "2026-11-03T12:00:00+08:00"
    bodies.append(complaint)
    for body in bodies:
        answer = client.post("/v1/events", json=body, headers=auth(ingest))
        assert answer.status_code == 200, answer.text


ASKED = [
    TicketReport("approvals", START, END, period="month"),
    TicketReport("approvals", START, END, period="week", kind="expense"),
    TicketReport("approvals", START, END, tz="UTC", period="day"),
    TicketReport("tickets", START, END, period="day", field="stage"),
    TicketReport("tickets", START, END, period="week", field="region", kind="loan"),
    TicketReport("tickets", START, END, tz="America/New_York", period="month", field="kind"),
    TicketReport("tickets", START, END, period="month", field="amount"),
    TicketReport("stages", START, END),
    TicketReport("stages", START, END, kind="loan"),
    TicketReport("workload", START, END),
    TicketReport("workload", START, END, group="总行信贷审批中心"),
]


def test_the_database_aggregates_as_python_does(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    seed(client, keys["ingest"])
    service = app.state.runtime.service
    records = list(service.ticket_records(START, END))
    assert len(records) == 12
    postgres = app.state.runtime.engine.dialect.name == "postgresql"
    for asked in ASKED:
        aggregated = service.store.aggregate_report(asked)
        computed = ticket_reports.from_records(records, asked)
        if not postgres:
            assert aggregated is None
            continue
        assert aggregated == computed, asked
        assert computed["groups"], asked
    answered = service.ticket_reports(ASKED)
    assert answered == [ticket_reports.from_records(records, asked) for asked in ASKED]


def test_the_dashboard_filters_and_the_distribution_by_any_field(
    client: TestClient, keys: dict[str, str]
) -> None:
    seed(client, keys["ingest"])
    window = {"from": "2026-01-01", "to": "2030-01-01"}
    page = client.get(
        "/console/reports",
        params={**window, "field": "stage", "period": "day", "kind": "loan"},
        headers=auth(keys["auditor"]),
    )
    assert page.status_code == 200, page.text
    spread = page.text.split('id="spread"', 1)[1].split("</section>", 1)[0]
    assert '<th scope="col">初审</th>' in spread and '<th scope="col">复审</th>' in spread
    assert 'data-bucket="2026-09-30"' in spread and 'data-bucket="2026-10-08"' in spread
    assert "field=stage" in spread and "period=day" in spread
    for section in ('id="timers"', 'id="late"', 'id="sla"', 'id="approvals"', 'id="workload"'):
        assert section in page.text
    only = client.get(
        "/console/reports",
        params={**window, "ruleset": "expense-approval", "group": "费用审批岗"},
        headers=auth(keys["auditor"]),
    ).text
    rules = only.split('id="rules"', 1)[1]
    assert "expense-approval" in rules and "loan-routing" not in rules
    workload = only.split('id="workload"', 1)[1].split("</section>", 1)[0]
    assert "费用审批岗" in workload and "总行信贷审批中心" not in workload
    by_kind = client.get("/console/reports", params=window, headers=auth(keys["auditor"])).text
    spread = by_kind.split('id="spread"', 1)[1].split("</section>", 1)[0]
    assert (
        "按 kind" in spread and '<th scope="col">loan</th>' in spread and 'data-bucket="2026-W40"' in spread
    )
