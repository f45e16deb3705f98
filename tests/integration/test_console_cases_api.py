"""The console's 测试用例 and text editor endpoints on SQLite and PostgreSQL: the check as you type (every
error at its line and column, nothing stored), cases run one by one, all together or from the form alone
(pass/fail, expected vs actual), and a case saved from the form into a new draft and then into the
author's own draft (refused to anyone else); the pages render for who may see them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rulesvc.apikeys import Role
from rulesvc.sla.clock import VirtualClock
from tests.integration.conftest import RULESETS, auth
from tests.integration.lifecycle_support import lifecycle_client, role_keys

EXPENSE = "expense-approval"
ROUTING = "loan-routing"
START = datetime.fromisoformat("2026-11-02T09:00:00+08:00")
ROUTING_TEXT = (RULESETS / f"{ROUTING}.yaml").read_text(encoding="utf-8")
CASE: dict[str, Any] = {
    "name": "差旅费1000元部门经理自动审批",
    "given": [
        {
            "type": "ticket.created",
            "at": "2026-11-03T09:30",
            "ticket": {
                "kind": "expense",
                "id": "E-2026-0100",
                "expense_type": "差旅费",
                "amount": "1000",
                "applicant_rank": "部门经理",
            },
        }
    ],
    "expect": ["{type: auto_approve}"],
}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with lifecycle_client(database_url, VirtualClock(START)) as test_client:
        yield test_client


@pytest.fixture
def keys(client: TestClient) -> dict[str, str]:
    roles = {"editor": {Role.EDITOR}, "editor2": {Role.EDITOR}, "auditor": {Role.AUDITOR}}
    return role_keys(client, roles, START)


def post(client: TestClient, key: str, path: str, body: dict[str, Any]) -> Any:
    return client.post(f"/console/api/rulesets/{path}", json=body, headers=auth(key))


def test_the_check_answers_each_error_at_its_line_and_column(
    client: TestClient, keys: dict[str, str]
) -> None:
    good = post(client, keys["editor"], f"{ROUTING}/check", {"content": ROUTING_TEXT})
    assert good.status_code == 200, good.text
    assert good.json()["ok"] is True and good.json()["diagnostics"] == []
    typo = ROUTING_TEXT.replace("地区: ticket.region", "地区: ticket.regoin")
    bad = post(client, keys["editor"], f"{ROUTING}/check", {"content": typo}).json()
    assert bad["ok"] is False and bad["content_sha256"] is None
    line = typo.splitlines().index("      地区: ticket.regoin") + 1
    assert [(d["line"], d["col"]) for d in bad["diagnostics"]] == [(line, 11)]
    assert "ticket.region" in (bad["diagnostics"][0]["hint"] or "")
    broken = ROUTING_TEXT.replace("on: [ticket.created]", "on: [ticket.created")
    syntax = post(client, keys["editor"], f"{ROUTING}/check", {"content": broken}).json()
    assert syntax["diagnostics"][0]["message"].startswith("YAML 语法错误")
    empty = post(client, keys["editor"], f"{ROUTING}/check", {"content": "  \n"}).json()
    assert empty["diagnostics"] == [
        {"line": 1, "col": 1, "code": "empty", "message": "规则集文件为空", "hint": None}
    ]
    refused = post(client, keys["auditor"], f"{ROUTING}/check", {"content": ROUTING_TEXT})
    assert refused.status_code == 403 and refused.json()["code"]
    assert (
        client.get(f"/console/rulesets/{ROUTING}/edit/text", headers=auth(keys["editor"])).status_code == 200
    )
    assert (
        client.get(f"/console/rulesets/{ROUTING}/edit/text", headers=auth(keys["auditor"])).status_code == 403
    )
    drafts = client.get(f"/v1/rulesets/{ROUTING}/drafts", headers=auth(keys["editor"])).json()
    assert drafts["drafts"] == []


def test_cases_run_one_all_or_from_the_form_with_expected_and_actual(
    client: TestClient, keys: dict[str, str]
) -> None:
    every = post(client, keys["auditor"], f"{EXPENSE}/cases/run", {}).json()
    assert every["total"] >= 10 and every["failed"] == 0 and every["errors"] == []
    assert [r["index"] for r in every["results"]] == list(range(every["total"]))
    one = post(client, keys["auditor"], f"{EXPENSE}/cases/run", {"index": 1}).json()
    assert [(r["index"], r["name"], r["passed"]) for r in one["results"]] == [
        (1, "差旅费5000元整不自动审批转人工", True)
    ]
    assert any("assign" in a for a in one["results"][0]["actual"])
    tried = post(client, keys["editor"], f"{EXPENSE}/cases/run", {"case": CASE}).json()
    assert tried["results"][0]["passed"] is True
    wrong = {**CASE, "expect": ["{type: assign, group: 费用审批岗}"]}
    failed = post(client, keys["editor"], f"{EXPENSE}/cases/run", {"case": wrong}).json()["results"][0]
    assert failed["passed"] is False
    assert "期望 {type: assign, group: 费用审批岗}，但没有这样的动作" in failed["problems"]
    assert any("auto_approve" in a for a in failed["actual"])
    nothing = post(
        client, keys["editor"], f"{EXPENSE}/cases/run", {"case": {**CASE, "expect": [], "expect_none": True}}
    )
    assert nothing.json()["results"][0]["problems"][0].startswith("不应出现 {}，但出现了 ")
    invalid = {**CASE, "given": [{**CASE["given"][0], "ticket": {"kind": "expense", "id": "E-1"}}]}
    errors = post(client, keys["editor"], f"{EXPENSE}/cases/run", {"case": invalid}).json()
    assert errors["results"] == [] and errors["errors"] and errors["errors"][0]["code"] == "case.bad_event"
    bad_time = post(client, keys["editor"], f"{EXPENSE}/cases/run", {"case": {**CASE, "until": "明天"}})
    assert bad_time.status_code == 422 and bad_time.json()["code"] == "case_edit.invalid"
    missing = post(client, keys["auditor"], f"{EXPENSE}/cases/run", {"index": 999})
    assert missing.status_code == 422


def test_a_case_from_the_form_is_saved_into_a_new_draft_then_the_authors_own(
    client: TestClient, keys: dict[str, str]
) -> None:
    saved = post(client, keys["editor"], f"{EXPENSE}/cases", {"case": CASE})
    assert saved.status_code == 201, saved.text
    draft_id = saved.json()["draft_id"]
    assert saved.json()["url"] == f"/console/cases?ruleset={EXPENSE}&draft={draft_id}"
    draft = client.get(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}", headers=auth(keys["editor"])).json()
    assert draft["reason"] == f"新增合规样例：{CASE['name']}" and draft["case_files"] == [EXPENSE]
    assert draft["tests"]["failed"] == 0
    run = post(client, keys["editor"], f"{EXPENSE}/cases/run", {"draft_id": draft_id}).json()
    index = next(r["index"] for r in run["results"] if r["name"] == CASE["name"])
    assert index == run["total"] - 1

    changed = {**CASE, "name": "差旅费1200元部门经理自动审批", "expect": ["{type: assign}"]}
    body = {"draft_id": draft_id, "index": index, "case": changed}
    replaced = post(client, keys["editor"], f"{EXPENSE}/cases", body)
    assert replaced.status_code == 200, replaced.text
    draft = client.get(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}", headers=auth(keys["editor"])).json()
    assert draft["tests"]["failed"] == 1
    assert [f["name"] for f in draft["tests"]["failures"]] == ["差旅费1200元部门经理自动审批"]
    assert post(client, keys["editor2"], f"{EXPENSE}/cases", body).status_code == 403
    same_name = {"draft_id": draft_id, "case": {**CASE, "name": "差旅费5000元整不自动审批转人工"}}
    assert post(client, keys["editor"], f"{EXPENSE}/cases", same_name).json()["code"] == "case_edit.invalid"

    page = client.get(
        "/console/cases", params={"ruleset": EXPENSE, "draft": draft_id}, headers=auth(keys["auditor"])
    )
    assert (
        page.status_code == 200
        and "差旅费1200元部门经理自动审批" in page.text
        and "新建样例" not in page.text
    )
    form = client.get(
        f"/console/cases/{EXPENSE}/{index}", params={"draft": draft_id}, headers=auth(keys["editor"])
    )
    assert form.status_code == 200 and 'value="1000"' in form.text
    assert client.get(f"/console/cases/{EXPENSE}/new", headers=auth(keys["auditor"])).status_code == 403
    assert client.get(f"/console/cases/{EXPENSE}/99", headers=auth(keys["editor"])).status_code == 404
    assert f'data-then="/console/cases?ruleset={EXPENSE}&amp;draft={draft_id}"' in form.text

    # The draft page's 修改样例 opens the same form, which returns to the draft page.
    draft_page = f"/console/rulesets/{EXPENSE}/drafts/{draft_id}"
    listing = client.get(draft_page, headers=auth(keys["editor"])).text
    assert f"/console/cases/{EXPENSE}/{index}?draft={draft_id}&amp;from=draft" in listing
    from_draft = client.get(
        f"/console/cases/{EXPENSE}/{index}",
        params={"draft": draft_id, "from": "draft"},
        headers=auth(keys["editor"]),
    )
    assert from_draft.status_code == 200 and f'data-then="{draft_page}"' in from_draft.text
    assert f'<a class="button" href="{draft_page}">取消</a>' in from_draft.text
    old = client.get(f"{draft_page}/cases/{index}", headers=auth(keys["editor"]), follow_redirects=False)
    assert old.status_code == 303
    assert old.headers["location"] == f"/console/cases/{EXPENSE}/{index}?draft={draft_id}&from=draft"
    odd = client.get(f"/console/cases/{EXPENSE}/{index}", params={"from": "x"}, headers=auth(keys["editor"]))
    assert odd.status_code == 422


def test_a_cases_sheet_comes_back_into_a_new_draft_then_the_authors_own(
    client: TestClient, keys: dict[str, str]
) -> None:
    sheet = client.get(
        f"/v1/rulesets/{ROUTING}/cases", params={"format": "csv"}, headers=auth(keys["editor"])
    )
    assert sheet.status_code == 200, sheet.text
    text = sheet.content.decode("utf-8-sig")
    name = "上海浦东贷款分派浦东分行A组"
    csv_type = {"Content-Type": "text/csv"}

    def upload(key: str, body: str, **params: str) -> Any:
        return client.post(
            f"/console/api/rulesets/{ROUTING}/cases/sheet",
            params={"filename": "样例.csv", **params},
            content=body.encode("utf-8-sig"),
            headers={**auth(key), **csv_type},
        )

    broken = upload(keys["editor"], text.replace("ticket.created", "ticket.creatd", 1))
    assert broken.status_code == 422 and broken.json()["code"] == "sheet.invalid"
    assert broken.json()["details"][0]["text"].startswith("样例.csv!")
    made = upload(keys["editor"], text.replace(name, name + "（表格）", 1))
    assert made.status_code == 201, made.text
    draft_id = made.json()["draft_id"]
    run = post(client, keys["editor"], f"{ROUTING}/cases/run", {"draft_id": draft_id}).json()
    assert run["failed"] == 0 and name + "（表格）" in [r["name"] for r in run["results"]]

    again = upload(keys["editor"], text.replace(name, name + "（再改）", 1), draft_id=draft_id)
    assert again.status_code == 200 and again.json()["draft_id"] == draft_id
    run = post(client, keys["editor"], f"{ROUTING}/cases/run", {"draft_id": draft_id}).json()
    assert name + "（再改）" in [r["name"] for r in run["results"]]
    assert upload(keys["editor2"], text, draft_id=draft_id).status_code == 403
    assert upload(keys["auditor"], text).status_code == 403
    page = client.get("/console/cases", params={"ruleset": ROUTING}, headers=auth(keys["editor"])).text
    assert f"/v1/rulesets/{ROUTING}/cases?version=1&amp;format=xlsx" in page
    assert f"/v1/rulesets/{ROUTING}/versions/1/report?format=html" in page
