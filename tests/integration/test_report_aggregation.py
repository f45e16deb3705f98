"""The ticket reports read the facts of each decision (`decision_facts`): aggregated by PostgreSQL they give
the same groups as `from_facts` in Python over the same rows (approvals, distributions by day / week /
month and by a nested field, stages, workload, with and without filters), on the whole span and on
periods cut at every decision; over the whole span both equal the reports as defined over the stored
records (`record_reports`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rulesvc import exactjson
from rulesvc.decisions import ticket_reports
from rulesvc.decisions.ticket_reports import TicketReport
from rulesvc.storage.fact_tables import DecisionFactRow
from rulesvc.storage.report_reads import period_facts
from rulesvc.storage.tables import DecisionRow
from tests.integration import record_reports
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


def records(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        texts = session.scalars(select(DecisionRow.record).order_by(DecisionRow.chain_seq)).all()
    return [exactjson.loads(text) for text in texts]


def python(engine: Engine, asked: TicketReport) -> dict[str, Any]:
    with Session(engine) as session:
        return ticket_reports.from_facts(period_facts(session, asked.start, asked.end), asked)


def test_the_database_aggregates_as_python_does(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    seed(client, keys["ingest"])
    service, engine = app.state.runtime.service, app.state.runtime.engine
    stored = records(engine)
    assert len(stored) == 12
    answered = service.ticket_reports(ASKED)
    for asked, answer in zip(ASKED, answered, strict=True):
        assert answer == python(engine, asked), asked
        assert answer == record_reports.from_records(stored, asked), asked
        assert answer["groups"], asked
    with Session(engine) as session:
        times = session.scalars(select(DecisionFactRow.decided_at).order_by(DecisionFactRow.chain_seq)).all()
    for cut in times[1:]:
        for asked in ASKED:
            for part in (replace(asked, start=cut), replace(asked, end=cut)):
                assert service.ticket_reports([part]) == [python(engine, part)], part


def test_a_stay_that_began_before_the_period_counts_whole_where_it_ended(
    app: FastAPI, client: TestClient, keys: dict[str, str]
) -> None:
    seed(client, keys["ingest"])
    engine = app.state.runtime.engine
    with Session(engine) as session:
        loan = session.scalars(
            select(DecisionFactRow.decided_at)
            .where(DecisionFactRow.ticket_id == "L-1")
            .order_by(DecisionFactRow.chain_seq)
        ).all()
    # from the decision that left 初审 (entered a day earlier, before the period) to the end
    [answer] = app.state.runtime.service.ticket_reports([TicketReport("stages", loan[1], END, kind="loan")])
    stays = {g["key"]["stage"]: (g["count"], g["avg_seconds"], g["open"]) for g in answer["groups"]}
    # the three other loans are still in 初审, L-1 in 终审
    assert stays == {
        "初审": (2, (23 + 136.5) * 3600 / 2, 3),
        "复审": (1, 30.5 * 3600, 0),
        "终审": (0, None, 1),
    }
    [before] = app.state.runtime.service.ticket_reports([TicketReport("stages", START, loan[1], kind="loan")])
    assert [(g["key"]["stage"], g["count"], g["open"]) for g in before["groups"]] == [("初审", 0, 1)]


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
