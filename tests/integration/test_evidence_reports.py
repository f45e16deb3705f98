"""Evidence files over HTTP for a draft and a published version, on SQLite and PostgreSQL: the versions
tested with their content hashes and audit chain entries (the same as `/history` shows), author and
approver, a failing case's expected against actual, coverage, the digest `rulesvc report verify` checks;
the refusals (unknown draft or version, unknown format, no key, a role without read); and `rulesvc test
--report --database` naming the published version a working copy holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from typer.testing import CliRunner

from cli import authoring as cli_authoring
from cli import evidence as cli_evidence
from rulesvc.testreport.verify import verify_file
from tests.evidence_support import parse_html, read_pdf, require_pdf_tools, table_with
from tests.integration import test_rulesets_lifecycle as lifecycle
from tests.integration.conftest import RULESETS, auth
from tests.integration.test_rulesets_lifecycle import EXPENSE, PINNED_5000, RAISED, RAISED_CASES

clock = lifecycle.clock
lifecycle_client = lifecycle.lifecycle_client
lc_keys = lifecycle.lc_keys


def report(client: TestClient, key: str, path: str, fmt: str | None = None) -> Any:
    params = {"format": fmt} if fmt else None
    return client.get(f"/v1/rulesets/{EXPENSE}/{path}/report", params=params, headers=auth(key))


def history(client: TestClient, key: str, name: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/rulesets/{name}/history", headers=auth(key))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def published_entry(client: TestClient, key: str, name: str, version: int) -> dict[str, Any]:
    return next(
        e
        for e in history(client, key, name)
        if e.get("step") in ("imported", "published") and e.get("version") == version
    )


def test_draft_and_version_evidence(
    lifecycle_client: TestClient, lc_keys: dict[str, str], tmp_path: Path
) -> None:
    client, keys = lifecycle_client, lc_keys
    editor, approver, auditor = keys["editor"], keys["approver"], keys["auditor"]
    pushed = client.post(
        f"/v1/rulesets/{EXPENSE}/drafts",
        content=RAISED.encode("utf-8"),
        params={"reason": "差旅费自动审批门槛调整为 8000 元"},
        headers={**auth(editor), "Content-Type": "application/yaml"},
    )
    assert pushed.status_code == 201, pushed.text
    draft = pushed.json()
    draft_id = draft["draft_id"]

    # The draft's evidence (HTML, the default): the shipped cases pinning 5000 fail, each with its diff.
    page_response = report(client, auditor, f"drafts/{draft_id}")
    assert page_response.status_code == 200, page_response.text
    assert page_response.headers["content-type"] == "text/html; charset=utf-8"
    disposition = page_response.headers["content-disposition"]
    assert re.fullmatch(  # named by its date (Asia/Shanghai)
        rf'attachment; filename="evidence-expense-approval-draft-{draft_id[:8]}-\d{{8}}\.html"; '
        r"filename\*=UTF-8''evidence-expense-approval-draft-.+\.html",
        disposition,
    ), disposition
    html_file = tmp_path / "draft.html"
    html_file.write_bytes(page_response.content)
    verdict = verify_file(html_file)
    assert verdict.ok, verdict.problems
    assert page_response.headers["x-evidence-sha256"] == verdict.computed
    page = parse_html(page_response.text)
    rulesets = table_with(page, "审计链位置")
    rows = {row[0]: (row, hashes[0]) for row, hashes in zip(rulesets[1::2], rulesets[2::2], strict=True)}
    row, hashes = rows[EXPENSE]
    assert row[1] == f"草稿 {draft_id[:8]}（基于 v1）" and row[3] == "未发布/工作副本"
    assert row[4] == draft["author"] and hashes == f"内容哈希（SHA-256）：{draft['content_sha256']}"
    loan, loan_hashes = rows["loan-approval"]  # the other rulesets: the versions in force, with their entry
    entry = published_entry(client, auditor, "loan-approval", 1)
    assert loan[1] == "v1" and loan[2] == "生效中" and loan[3] == f"第 {entry['seq']} 条"
    assert loan[6].startswith("导入即生效（")  # not 1970-01-01
    assert loan_hashes.endswith(f"审计链条目哈希：{entry['hash']}")
    cases = table_with(page, "结果")
    assert {r[1] for r in cases[1:] if r[3] == "失败"} == PINNED_5000
    body = " ".join(" ".join(page.text).split())
    assert "期望 {type: assign, group: 费用审批岗}，但没有这样的动作" in body
    assert "auto_approve() ← expense-approval/报销审批#差旅费小额自动审批" in body

    # The same evidence as XLSX.
    as_xlsx = report(client, auditor, f"drafts/{draft_id}", "xlsx")
    assert as_xlsx.status_code == 200
    assert as_xlsx.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    xlsx_file = tmp_path / "draft.xlsx"
    xlsx_file.write_bytes(as_xlsx.content)
    assert verify_file(xlsx_file).ok
    book = load_workbook(xlsx_file)
    failed = {r[1]: r for r in book["样例"].iter_rows(min_row=2, values_only=True) if r[4] == "失败"}
    assert set(failed) == PINNED_5000
    assert all("但没有这样的动作" in r[8] for r in failed.values())

    # Cases updated, approved by another person, published: version 2's evidence names its approver and the
    # chain entry that published it.
    uploaded = client.put(
        f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/cases",
        content=RAISED_CASES.encode("utf-8"),
        headers={**auth(editor), "Content-Type": "application/yaml"},
    )
    assert uploaded.status_code == 200, uploaded.text
    for key, action in ((editor, "submit"), (approver, "approve"), (editor, "publish")):
        done = client.post(f"/v1/rulesets/{EXPENSE}/drafts/{draft_id}/{action}", headers=auth(key))
        assert done.status_code == 200, done.text
    version = done.json()
    assert version["version"] == 2
    entry = published_entry(client, auditor, EXPENSE, 2)
    as_xlsx = report(client, auditor, "versions/2", "xlsx")
    assert as_xlsx.status_code == 200
    assert 'filename="evidence-expense-approval-v2-' in as_xlsx.headers["content-disposition"]
    xlsx_file.write_bytes(as_xlsx.content)
    assert verify_file(xlsx_file).ok
    book = load_workbook(xlsx_file)
    tested = {r[0]: r for r in book["规则集"].iter_rows(min_row=2, values_only=True)}
    assert tested[EXPENSE][:6] == (
        EXPENSE,
        "v2",
        "生效中",
        version["content_sha256"],
        f"第 {entry['seq']} 条",
        entry["hash"],
    )
    assert tested[EXPENSE][6] == version["author"] and tested[EXPENSE][7] == version["approver"]
    overview = {r[0]: r[1] for r in book["概要"].iter_rows(min_row=2, values_only=True)}
    assert overview["失败"] == 0 and overview["结论"] == "全部通过"
    assert {r[4] for r in book["样例"].iter_rows(min_row=2, values_only=True)} == {"通过"}
    coverage = {r[0]: r[3] for r in book["覆盖率"].iter_rows(min_row=2, values_only=True)}
    assert coverage[EXPENSE] == "100.0%"

    # Version 1 is now superseded; its evidence says so.
    old = report(client, auditor, "versions/1")
    assert old.status_code == 200
    old_rows = table_with(parse_html(old.text), "审计链位置")
    assert next(r for r in old_rows[1::2] if r[0] == EXPENSE)[1:3] == ["v1", "已被取代"]

    # And as PDF, Chinese embedded, read back with pdftotext.
    require_pdf_tools()
    as_pdf = report(client, auditor, "versions/2", "pdf")
    assert as_pdf.status_code == 200 and as_pdf.headers["content-type"] == "application/pdf"
    pdf_file = tmp_path / "v2.pdf"
    pdf_file.write_bytes(as_pdf.content)
    text = " ".join(read_pdf(pdf_file).split())
    assert f"内容哈希（SHA-256）：{version['content_sha256']}" in text
    assert f"审计链条目哈希：{entry['hash']}" in text and "全部通过" in text
    assert verify_file(pdf_file).ok


def test_refusals(lifecycle_client: TestClient, lc_keys: dict[str, str]) -> None:
    client, keys = lifecycle_client, lc_keys
    auditor = keys["auditor"]
    missing = report(client, auditor, "drafts/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert report(client, auditor, "drafts/not-a-draft").status_code == 404
    assert report(client, auditor, "versions/99").status_code == 404
    other = client.get("/v1/rulesets/no-such-ruleset/versions/1/report", headers=auth(auditor))
    assert other.status_code == 404
    bad_format = report(client, auditor, "versions/1", "docx")
    assert bad_format.status_code == 422 and bad_format.json()["code"] == "invalid_request"
    assert report(client, auditor, "versions/0").status_code == 422
    assert client.get(f"/v1/rulesets/{EXPENSE}/versions/1/report").status_code == 401
    assert report(client, keys["ingest"], "versions/1").status_code == 403


def test_cli_names_the_published_version_a_working_copy_holds(
    lifecycle_client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """The service imported the shipped folder as version 1 of every ruleset: `rulesvc test --report
    --database` shows each file as that version with its chain entry."""
    app = typer.Typer()
    cli_authoring.register(app)
    cli_evidence.register(app)
    target = tmp_path / "证据.xlsx"
    result = CliRunner().invoke(
        app, ["test", str(RULESETS), "--report", str(target), "--database", database_url]
    )
    assert result.exit_code == 0, result.output
    book = load_workbook(target)
    tested = {r[0]: r for r in book["规则集"].iter_rows(min_row=2, values_only=True)}
    assert {r[1] for r in tested.values()} == {"v1"}
    assert all(str(r[4]).startswith("第 ") and len(str(r[5])) == 64 for r in tested.values())
    assert tested[EXPENSE][7] == "（导入，无审批）"
    assert verify_file(target).ok
