"""Decision tables and cases as XLSX/CSV over HTTP, on SQLite and PostgreSQL: downloads from the version in
force, a version or a draft; a sheet into a draft (a new draft, the table of a draft, its cases), never
published; errors by cell; who may upload."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from rulesvc.apikeys import Role
from rulesvc.sla.clock import VirtualClock
from tests.integration.conftest import RULESETS, auth
from tests.integration.lifecycle_support import lifecycle_client, role_keys

EXPENSE = "expense-approval"
TABLE = "报销审批"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
START = datetime.fromisoformat("2026-11-02T09:00:00+08:00")
ORIGINAL_CASES = (RULESETS / "cases" / f"{EXPENSE}.yaml").read_text(encoding="utf-8")


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with lifecycle_client(database_url, VirtualClock(START)) as test_client:
        yield test_client


@pytest.fixture
def keys(client: TestClient) -> dict[str, str]:
    roles = {
        "editor": {Role.EDITOR},
        "editor2": {Role.EDITOR},
        "approver": {Role.APPROVER},
        "auditor": {Role.AUDITOR},
    }
    return role_keys(client, roles, START)


def xlsx(data: bytes) -> Any:
    return load_workbook(io.BytesIO(data)).active


def saved(sheet: Any) -> bytes:
    out = io.BytesIO()
    sheet.parent.save(out)
    return out.getvalue()


def rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def upload(client: TestClient, method: str, path: str, key: str, data: bytes, **params: str) -> Any:
    media = "text/csv" if params.get("format") == "csv" else XLSX
    return client.request(
        method, path, content=data, params=params or None, headers={**auth(key), "Content-Type": media}
    )


def test_a_table_through_a_draft_and_back(client: TestClient, keys: dict[str, str]) -> None:
    editor, auditor = keys["editor"], keys["auditor"]
    got = client.get(f"/v1/rulesets/{EXPENSE}/tables/{TABLE}", headers=auth(auditor))
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == XLSX
    assert f"filename*=UTF-8''{quote(f'{EXPENSE}-{TABLE}-v1.xlsx')}" in got.headers["content-disposition"]
    sheet = xlsx(got.content)
    assert [sheet["A1"].value, sheet["B1"].value, sheet["D5"].value] == ["决策表", TABLE, "< 5000"]

    # A sheet becomes a new draft of the latest version; the version in force does not change.
    sheet["D5"] = "< 8000"
    made = upload(
        client, "POST", f"/v1/rulesets/{EXPENSE}/tables/{TABLE}", editor, saved(sheet), reason="门槛"
    )
    assert made.status_code == 201, made.text
    draft = made.json()
    draft_id = draft["draft_id"]
    assert draft["status"] == "draft" and draft["base_version"] == 1 and draft["reason"] == "门槛"
    assert any("< 5000 → < 8000" in line for line in draft["diff"]["summary"])
    assert draft["tests"]["failed"] > 0  # the cases pinning 5000 now fail
    in_force = client.get(
        f"/v1/rulesets/{EXPENSE}/tables/{TABLE}", params={"format": "csv"}, headers=auth(editor)
    )
    assert in_force.headers["content-type"].startswith("text/csv")
    assert rows(in_force.content)[4][3] == "< 5000"
    drafted = client.get(
        f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/tables/{TABLE}",
        params={"format": "csv"},
        headers=auth(editor),
    )
    assert drafted.status_code == 200 and rows(drafted.content)[4][3] == "< 8000"

    # The table of the draft replaced from a CSV sheet: checked, re-tested, recorded; still a draft.
    grid = rows(drafted.content)
    grid[4][3] = "< 6000"
    out = io.StringIO()
    csv.writer(out).writerows(grid)
    path = f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/tables/{TABLE}"
    put = upload(client, "PUT", path, editor, out.getvalue().encode("utf-8"), format="csv")
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "draft" and put.json()["draft_id"] == draft_id
    detail = client.get(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}", headers=auth(editor)).json()
    assert '金额: "< 6000"' in detail["content"]
    history = client.get(f"/v1/rulesets/{EXPENSE}/history", headers=auth(auditor)).json()["entries"]
    assert [e["step"] for e in history][-2:] == ["draft_created", "table_uploaded"]
    assert history[-1]["table"] == TABLE
    versions = client.get(f"/v1/rulesets/{EXPENSE}/versions", headers=auth(auditor)).json()["versions"]
    assert [v["version"] for v in versions] == [1]

    # A bad cell: 422 sheet.invalid, every error at its cell; nothing changes.
    sheet["E5"] = ">= 部门经里"
    bad = upload(client, "PUT", path, editor, saved(sheet), filename="报销.xlsx")
    assert bad.status_code == 422, bad.text
    body = bad.json()
    assert body["code"] == "sheet.invalid"
    assert body["details"][0]["code"] == "sheet.unknown_enum_value"
    assert body["details"][0]["text"].startswith(
        f'报销.xlsx!{TABLE}!E5: "部门经里" 不是 职级 的取值（是不是 "部门经理"？）'
    )
    detail = client.get(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}", headers=auth(editor)).json()
    assert '金额: "< 6000"' in detail["content"]


def test_who_may_upload_a_sheet_and_what(client: TestClient, keys: dict[str, str]) -> None:
    editor = keys["editor"]
    sheet = client.get(f"/v1/rulesets/{EXPENSE}/tables/{TABLE}", headers=auth(editor)).content
    same = upload(client, "POST", f"/v1/rulesets/{EXPENSE}/tables/{TABLE}", editor, sheet)
    assert (same.status_code, same.json()["code"]) == (422, "no_change")  # the sheet gives the file back
    changed = xlsx(sheet)
    changed["D5"] = "< 4000"
    draft_id = upload(
        client, "POST", f"/v1/rulesets/{EXPENSE}/tables/{TABLE}", editor, saved(changed)
    ).json()["draft_id"]
    path = f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/tables/{TABLE}"
    assert upload(client, "PUT", path, keys["editor2"], sheet).status_code == 403  # not the author
    assert upload(client, "PUT", path, keys["approver"], sheet).status_code == 403  # no write role
    assert upload(client, "PUT", path, keys["auditor"], sheet).status_code == 403
    wrong = client.put(path, content=sheet, headers={**auth(editor), "Content-Type": "application/pdf"})
    assert wrong.status_code == 415 and wrong.json()["code"] == "unsupported_media_type"
    missing = upload(
        client, "PUT", f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/tables/没有这张表", editor, sheet
    )
    assert missing.status_code == 404, missing.text
    assert client.get(f"/v1/rulesets/{EXPENSE}/tables/没有这张表", headers=auth(editor)).status_code == 404
    assert client.get(f"/v1/rulesets/没有/tables/{TABLE}", headers=auth(editor)).status_code == 404
    broken = upload(client, "PUT", path, editor, b"not a workbook", filename="x.xlsx")
    assert broken.status_code == 422 and broken.json()["details"][0]["code"] == "sheet.unreadable"


def test_cases_through_a_draft_and_back(client: TestClient, keys: dict[str, str]) -> None:
    editor = keys["editor"]
    got = client.get(f"/v1/rulesets/{EXPENSE}/cases", headers=auth(keys["auditor"]))
    assert got.status_code == 200, got.text
    sheet = xlsx(got.content)
    assert [sheet["A1"].value, sheet["B1"].value, sheet["A4"].value] == [
        "合规样例",
        EXPENSE,
        "差旅费4999.99元部门经理自动审批并付款",
    ]
    assert client.get(f"/v1/rulesets/{EXPENSE}/cases", params={"version": 1}, headers=auth(editor)).content
    drafted = client.post(
        f"/v1/rulesets/{EXPENSE}/drafts",
        json={"content": (RULESETS / f"{EXPENSE}.yaml").read_text(encoding="utf-8") + "\n# 说明\n"},
        headers=auth(editor),
    )
    assert drafted.status_code == 201, drafted.text
    draft_id = drafted.json()["draft_id"]
    path = f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/cases"

    # Download the draft's cases, add a case in Excel, upload: the case file changes, tests run again.
    sheet = xlsx(client.get(path, headers=auth(editor)).content)
    row = sheet.max_row + 1
    values = {1: "总监报销3000自动审批", 3: "ticket.created", 4: "2026-11-02 11:00", 6: "E-2026-0100"}
    values |= {7: "差旅费", 8: "3000", 9: "总监", 13: "{type: auto_approve}"}
    for col, value in values.items():
        sheet.cell(row, col, value)
    put = upload(client, "PUT", path, editor, saved(sheet))
    assert put.status_code == 200, put.text
    assert put.json()["tests"]["failed"] == 0
    assert put.json()["tests"]["total"] == put.json()["tests"]["passed"]
    detail = client.get(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}", headers=auth(editor)).json()
    text = detail["cases"][EXPENSE]
    assert text.startswith(ORIGINAL_CASES.rstrip("\n") + "\n\n  - name: 总监报销3000自动审批\n")
    back = xlsx(client.get(path, headers=auth(editor)).content)
    assert back.cell(row, 1).value == "总监报销3000自动审批"
    assert back.cell(row, 4).value == "2026-11-02 11:00"

    # A CSV with bad cells: 422 sheet.invalid with each error at its cell.
    grid = rows(client.get(path, params={"format": "csv"}, headers=auth(editor)).content)
    grid[3][8] = "部门经里"
    grid[4][3] = "2026-11-31 10:00"
    grid[2][7] = "ticket.amout"
    out = io.StringIO()
    csv.writer(out).writerows(grid)
    bad = upload(
        client, "PUT", path, editor, out.getvalue().encode("utf-8"), format="csv", filename="样例.csv"
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["code"] == "sheet.invalid"
    assert [d["text"].split(": ")[0] for d in bad.json()["details"]] == ["样例.csv!H3"]  # the header first
    grid[2][7] = "ticket.amount"
    out = io.StringIO()
    csv.writer(out).writerows(grid)
    bad = upload(
        client, "PUT", path, editor, out.getvalue().encode("utf-8"), format="csv", filename="样例.csv"
    )
    assert [(d["code"], d["text"].split(": ")[0]) for d in bad.json()["details"]] == [
        ("sheet.unknown_enum_value", "样例.csv!I4"),
        ("sheet.bad_time", "样例.csv!D5"),
    ]
    assert upload(client, "PUT", path, keys["editor2"], saved(sheet)).status_code == 403

    # Submitted, the draft no longer changes: neither its cases nor its tables.
    submitted = client.post(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/submit", headers=auth(editor))
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted", submitted.text
    assert upload(client, "PUT", path, editor, saved(sheet)).status_code == 409
    table = client.get(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/tables/{TABLE}", headers=auth(editor))
    put = upload(
        client, "PUT", f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/tables/{TABLE}", editor, table.content
    )
    assert put.status_code == 409 and put.json()["code"] == "invalid_state"
