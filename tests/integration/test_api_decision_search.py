"""GET /v1/decisions: search by ticket, event, time, rule and action type, newest first, keyset pages,
masked as the detail is; bad parameters are 422 with a code. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.integration.conftest import auth, engine_of, event


def post(client: TestClient, keys: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/events", json=body, headers=auth(keys["ingest"]))
    assert response.status_code == 200, response.text
    decided: dict[str, Any] = response.json()
    return decided


def search(client: TestClient, key: str, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/decisions", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def ids(page: dict[str, Any]) -> list[str]:
    return [record["decision_id"] for record in page["records"]]


def seed(client: TestClient, keys: dict[str, str]) -> list[dict[str, Any]]:
    """Two loans (the first updated once) and an expense claim, in this order."""
    return [
        post(client, keys, event("loan-1", "loan")),
        post(client, keys, event("exp-1", "expense")),
        post(client, keys, event("loan-2", "loan", amount=6000000)),
        post(
            client,
            keys,
            {
                **event("loan-1b", "loan", id="L-loan-1", stage="复审"),
                "type": "ticket.updated",
                "occurred_at": "2026-09-30T12:00:00+08:00",
            },
        ),
    ]


def test_by_ticket_newest_first_masked_like_the_detail(client: TestClient, keys: dict[str, str]) -> None:
    decided = seed(client, keys)
    page = search(client, keys["auditor"], ticket_id="L-loan-1")
    assert ids(page) == [decided[3]["decision_id"], decided[0]["decision_id"]]
    assert page["next_after"] is None
    detail = client.get(f"/v1/decisions/{decided[0]['decision_id']}", headers=auth(keys["auditor"])).json()
    assert page["records"][1] == detail
    assert detail["masked"] is True and detail["event"]["ticket"]["mobile"] == "138****5678"


def test_compliance_sees_clear_and_each_clear_read_is_logged(
    client: TestClient, keys: dict[str, str]
) -> None:
    decided = seed(client, keys)
    page = search(client, keys["compliance"], ticket_id="L-loan-1")
    assert [r["masked"] for r in page["records"]] == [False, False]
    assert page["records"][1]["event"]["ticket"]["mobile"] == "13812345678"
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        read = conn.execute(
            text("SELECT subject FROM audit_log WHERE kind = 'clear_read' ORDER BY seq")
        ).all()
    assert [r.subject for r in read] == [decided[3]["decision_id"], decided[0]["decision_id"]]
    assert client.get("/v1/audit/verify", headers=auth(keys["auditor"])).json()["ok"] is True


def test_pages_follow_the_cursor_to_the_end(client: TestClient, keys: dict[str, str]) -> None:
    decided = seed(client, keys)
    everything = ids(search(client, keys["auditor"]))
    assert everything == [d["decision_id"] for d in reversed(decided)]
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"after": after} if after else {})
        page = search(client, keys["auditor"], **params)
        seen += ids(page)
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert seen == everything and pages == 4
    post(client, keys, event("exp-late", "expense"))  # stored meanwhile: not on an older page
    first = search(client, keys["auditor"], limit=2)
    assert ids(search(client, keys["auditor"], limit=2, after=first["next_after"])) == everything[1:3]


def test_filters_by_rule_table_row_action_event_and_time(client: TestClient, keys: dict[str, str]) -> None:
    decided = seed(client, keys)
    loans = {decided[0]["decision_id"], decided[2]["decision_id"], decided[3]["decision_id"]}
    by_ruleset = set(ids(search(client, keys["auditor"], rule="loan-routing")))
    assert by_ruleset and by_ruleset <= loans
    fired = decided[2]["fired"]
    row = next(f for f in fired if "#" in f["rule"])
    table = row["rule"].split("#")[0]
    assert decided[2]["decision_id"] in ids(
        search(client, keys["auditor"], rule=f"{row['ruleset']}/{row['rule']}")
    )
    assert decided[2]["decision_id"] in ids(search(client, keys["auditor"], rule=f"{row['ruleset']}/{table}"))
    assert ids(search(client, keys["auditor"], rule="loan-routing/没有这条规则")) == []
    action = decided[1]["actions"][0]["type"]
    typed = ids(search(client, keys["auditor"], action_type=action))
    assert decided[1]["decision_id"] in typed
    both = ids(search(client, keys["auditor"], action_type=action, rule="expense-approval"))
    assert both == [d for d in typed if d == decided[1]["decision_id"]]
    assert ids(search(client, keys["auditor"], action_type=action, ticket_id="E-exp-1")) == [
        decided[1]["decision_id"]
    ]
    assert ids(search(client, keys["auditor"], event_id="loan-2")) == [decided[2]["decision_id"]]
    at = [
        client.get(f"/v1/decisions/{d['decision_id']}", headers=auth(keys["auditor"])).json() for d in decided
    ]
    window = {"from": at[1]["decided_at"], "to": at[3]["decided_at"]}
    assert ids(search(client, keys["auditor"], **window)) == [
        decided[2]["decision_id"],
        decided[1]["decision_id"],
    ]
    assert ids(search(client, keys["auditor"], rule="loan-routing", **window)) == [decided[2]["decision_id"]]


def test_bad_parameters_are_422_with_a_code(client: TestClient, keys: dict[str, str]) -> None:
    seed(client, keys)
    cases = [
        ({"limit": 0}, "invalid_request"),
        ({"limit": 201}, "invalid_request"),
        ({"from": "昨天"}, "invalid_request"),
        ({"from": "2026-12-01T00:00:00"}, "invalid_request"),  # no offset: which day?
        ({"after": "not-a-cursor"}, "decisions.bad_cursor"),
        ({"after": "WyJ4IiwxXQ"}, "decisions.bad_cursor"),  # ["x",1]
        ({"from": "2026-12-02T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"}, "decisions.bad_range"),
        ({"colour": "red"}, "invalid_request"),
    ]
    for params, code in cases:
        response = client.get("/v1/decisions", params=params, headers=auth(keys["auditor"]))
        assert response.status_code == 422, (params, response.text)
        body = response.json()
        assert body["code"] == code, (params, body)
        assert body["message"] and body["details"], body
    assert client.get("/v1/decisions", headers=auth(keys["ingest"])).status_code == 403


def test_rule_hit_counts_include_rules_never_fired(client: TestClient, keys: dict[str, str]) -> None:
    decided = seed(client, keys)
    window = {"from": "2000-01-01T00:00:00+08:00", "to": "2100-01-01T00:00:00+08:00"}
    response = client.get("/v1/reports/rules", params=window, headers=auth(keys["auditor"]))
    assert response.status_code == 200, response.text
    report = response.json()
    hits = {f"{g['key']['ruleset']}/{g['key']['rule']}": g["hits"] for g in report["groups"]}
    for fired in decided[2]["fired"]:
        assert hits[f"{fired['ruleset']}/{fired['rule']}"] >= 1
    assert report["never_fired"] and all(hits[ref] == 0 for ref in report["never_fired"])
    assert sum(hits.values()) == sum(len(d["fired"]) for d in decided)
    only = client.get(
        "/v1/reports/rules", params={**window, "ruleset": "loan-routing"}, headers=auth(keys["auditor"])
    )
    assert {g["key"]["ruleset"] for g in only.json()["groups"]} == {"loan-routing"}
    as_csv = client.get(
        "/v1/reports/rules", params={**window, "format": "csv"}, headers=auth(keys["auditor"])
    )
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows[0] == ["规则集 (ruleset)", "规则 (rule)", "命中次数 (hits)", "已命中 (fired)"]
    assert len(rows) == len(report["groups"]) + 1
    empty = client.get(
        "/v1/reports/rules",
        params={"from": window["to"], "to": window["from"]},
        headers=auth(keys["auditor"]),
    )
    assert empty.status_code == 422 and empty.json()["code"] == "invalid_report"


def test_ticket_reports_and_their_files(client: TestClient, keys: dict[str, str]) -> None:
    seed(client, keys)
    window = {"from": "2020-01-01T00:00:00+08:00", "to": "2029-01-01T00:00:00+08:00"}

    def report(name: str, **params: Any) -> dict[str, Any]:
        response = client.get(
            f"/v1/reports/{name}", params={**window, **params}, headers=auth(keys["auditor"])
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    approvals = {g["key"]["kind"]: g for g in report("approvals", period="month")["groups"]}
    assert approvals["expense"]["key"]["month"] == "2026-09"
    assert (approvals["expense"]["tickets"], approvals["expense"]["auto_approved"]) == (1, 1)
    assert (
        approvals["expense"]["auto_approval_rate"] == 1.0 and approvals["expense"]["auto_amount"] == 4999.99
    )
    assert (approvals["loan"]["tickets"], approvals["loan"]["auto_approved"]) == (2, 0)
    assert approvals["loan"]["amount"] == 6800000
    spread = report("tickets", field="stage", kind="loan")["groups"]
    # a ticket counts once a day, with its stage at its last decision of the day: L-loan-1 moved on
    assert [(g["key"]["value"], g["tickets"]) for g in spread] == [("初审", 1), ("复审", 1)]
    stages = {g["key"]["stage"]: g for g in report("stages", kind="loan")["groups"]}
    assert (stages["初审"]["count"], stages["初审"]["avg_seconds"], stages["初审"]["p90_seconds"]) == (
        1,
        7200.0,
        7200.0,
    )
    assert stages["初审"]["open"] == 1 and stages["复审"]["open"] == 1
    work = report("workload")["groups"]
    assert sum(g["tickets"] for g in work) == 3
    loan_one = [g for g in work if g["key"]["assignee"] == "王经理" and g["avg_handling_seconds"] > 0]
    assert loan_one and loan_one[0]["key"]["group"]
    for name in ("approvals", "workload", "stages"):
        as_xlsx = client.get(
            f"/v1/reports/{name}", params={**window, "format": "xlsx"}, headers=auth(keys["auditor"])
        )
        sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content)).worksheets[0]
        assert sheet.max_row == len(report(name)["groups"]) + 1
    bad = client.get("/v1/reports/tickets", params=window, headers=auth(keys["auditor"]))
    assert bad.status_code == 422 and bad.json()["details"][0]["path"] == "field"
    assert client.get("/v1/reports/nope", params=window, headers=auth(keys["auditor"])).status_code == 422


def test_console_search_and_why_pages(client: TestClient, keys: dict[str, str]) -> None:
    decided = seed(client, keys)
    page = client.get("/console/decisions", params={"ticket_id": "L-loan-1"}, headers=auth(keys["auditor"]))
    assert page.status_code == 200, page.text
    assert page.text.count('data-decision="') == 2 and decided[0]["decision_id"] in page.text
    paged = client.get("/console/decisions", params={"rule": "loan-routing"}, headers=auth(keys["auditor"]))
    assert paged.status_code == 200 and 'data-decision="' in paged.text
    bad = client.get("/console/decisions", params={"from": "昨天"}, headers=auth(keys["auditor"]))
    assert bad.status_code == 200 and "时间格式不对" in bad.text
    why = client.get(f"/console/decisions/{decided[2]['decision_id']}", headers=auth(keys["auditor"]))
    assert why.status_code == 200, why.text
    assert 'id="masked"' in why.text and "138****5678" in why.text and "13812345678" not in why.text
    assert "金额(ticket.amount)" in why.text and 'id="chain"' in why.text and "loan-routing v" in why.text
    clear = client.get(f"/console/decisions/{decided[2]['decision_id']}", headers=auth(keys["compliance"]))
    assert 'id="clear"' in clear.text and "13812345678" in clear.text
    assert client.get("/console/decisions/nope", headers=auth(keys["auditor"])).status_code == 404


def test_console_reports_page(client: TestClient, keys: dict[str, str]) -> None:
    seed(client, keys)
    page = client.get("/console/reports", headers=auth(keys["auditor"]))
    assert page.status_code == 200, page.text
    for section in ('id="sla"', 'id="approvals"', 'id="stages"', 'id="workload"', 'id="rules"'):
        assert section in page.text
    assert "expense" in page.text and "从未命中" in page.text
    assert "/v1/reports/rules?from=" in page.text and "format=xlsx" in page.text
    assert client.get("/console/reports", headers=auth(keys["ingest"])).status_code == 403
