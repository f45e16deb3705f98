"""`rulesvc test --report` evidence files opened and checked as a reader would (html.parser, openpyxl,
pdftotext): the rulesets' content hashes, a failing case's expected against actual, coverage, the date, and
a digest `rulesvc report verify` recomputes — and that no longer holds once anything is changed."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

import cli
from cli import authoring as cli_authoring
from cli import evidence as cli_evidence
from rulesvc.audit.chain import canonical
from rulesvc.testreport.document import Evidence, digest_of
from rulesvc.testreport.html_file import read_html
from rulesvc.testreport.pdf_file import render_pdf
from rulesvc.testreport.verify import verify_file
from rulesvc.testreport.xlsx_file import read_xlsx, render_xlsx
from tests.evidence_support import parse_html, read_pdf, require_pdf_tools, table_with

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"
FAILING = "差旅费5000元整不自动审批转人工"
NAMES = ["complaint-sla", "expense-approval", "loan-approval", "loan-routing", "loan-sla"]

if "test" not in {c.name or (c.callback.__name__ if c.callback else "") for c in cli.app.registered_commands}:
    cli_authoring.register(cli.app)
if "report" not in {g.name or "" for g in cli.app.registered_groups}:
    cli_evidence.register(cli.app)


def run(*args: Any) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped rules with one case made to fail: 5000 元整 is now 1 元 (auto-approved, not assigned)."""
    root = tmp_path_factory.mktemp("rules") / "rulesets"
    shutil.copytree(RULESETS, root)
    cases = root / "cases" / "expense-approval.yaml"
    cases.write_text(cases.read_text(encoding="utf-8").replace("amount: 5000,", "amount: 1,", 1), "utf-8")
    return root


@pytest.fixture(scope="module")
def written(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("evidence")
    files = {ext: out / f"证据.{ext}" for ext in ("html", "xlsx")}
    result = run("test", folder, "--report", files["html"], "--report", files["xlsx"])
    assert result.exit_code == 1, result.output  # a failing case: the run fails, the evidence is written
    assert f"FAIL 未通过 {FAILING}" in result.output
    digests = set(re.findall(r"报告摘要 SHA-256 ([0-9a-f]{64})", result.output))
    assert len(digests) == 1  # both files state one digest of one content
    return files


def test_html_names_versions_hashes_failures_coverage_and_digest(
    folder: Path, written: dict[str, Path]
) -> None:
    text = written["html"].read_text(encoding="utf-8")
    page = parse_html(text)
    assert page.headings[0] == "合规测试证据报告"
    assert "http" not in text.replace("http-equiv", "")  # self-contained: no external asset
    assert "<link" not in text and "<img" not in text and "@import" not in text

    overview = {row[0]: row[1] for row in table_with(page, "项目")[1:]}
    assert "未通过（1 个样例失败）" in overview["结论"]
    assert overview["样例"] == "共 51 个：通过 50，失败 1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+08:00（北京时间）", overview["生成时间"])

    rulesets = table_with(page, "审计链位置")
    assert [row[0] for row in rulesets[1::2]] == NAMES
    for row, hashes in zip(rulesets[1::2], rulesets[2::2], strict=True):
        assert row[1:5] == ["工作副本", "—", "未发布/工作副本", "—"]
        assert hashes == [f"内容哈希（SHA-256）：{sha256_file(folder / f'{row[0]}.yaml')}"]

    cases = table_with(page, "结果")
    failed = [row for row in cases[1:] if row[3] == "失败"]
    assert [row[1] for row in failed] == [FAILING]
    assert failed[0][2].endswith("cases/expense-approval.yaml:17")
    assert sum(1 for row in cases[1:] if row[3] == "通过") == 50

    body = " ".join(" ".join(page.text).split())
    assert f"{FAILING}（{folder}/cases/expense-approval.yaml:17）" in body
    assert "期望的动作： {type: assign, group: 费用审批岗}" in body
    assert "2026-11-02T10:05:00+08:00 auto_approve() ← expense-approval/报销审批#差旅费小额自动审批" in body
    assert "期望 {type: assign, group: 费用审批岗}，但没有这样的动作" in body

    coverage = table_with(page, "覆盖率")
    assert [row[0] for row in coverage[1:]] == NAMES
    assert all(row[3] == "100.0%" and row[4] == "—" for row in coverage[1:])

    content = read_html(text)
    assert content is not None
    digest = hashlib.sha256(canonical(content).encode("utf-8")).hexdigest()
    assert f"SHA-256： {digest}" in body
    assert verify_file(written["html"]).ok


def test_html_altered_anywhere_no_longer_verifies(written: dict[str, Path], tmp_path: Path) -> None:
    text = written["html"].read_text(encoding="utf-8")
    content = read_html(text)
    assert content is not None
    changed = json.loads(json.dumps(content))
    changed["cases"][0]["name"] += "（改）"
    assert digest_of(changed) != digest_of(content)  # the digest moves with the content
    edits = {
        "result": text.replace('<span class="fail">失败</span>', '<span class="pass">通过</span>', 1),
        "hash": text.replace(content["rulesets"][1]["content_sha256"], "0" * 64, 1),
        "embedded": text.replace(f'"name": "{FAILING}"', '"name": "改过的样例"', 1),
    }
    for what, edited in edits.items():
        assert edited != text, what
        target = tmp_path / f"{what}.html"
        target.write_text(edited, encoding="utf-8")
        verdict = verify_file(target)
        assert not verdict.ok, what
    result = run("report", "verify", tmp_path / "embedded.html")
    assert result.exit_code == 1 and "摘要与文件写明的摘要不符" in result.output
    ok = run("report", "verify", written["html"])
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True


def test_xlsx_sheets_and_digest(folder: Path, written: dict[str, Path], tmp_path: Path) -> None:
    book = load_workbook(written["xlsx"])
    assert book.sheetnames == ["概要", "规则集", "样例", "覆盖率", "内容"]
    assert book["内容"].sheet_state == "hidden"
    overview = {row[0]: row[1] for row in book["概要"].iter_rows(min_row=2, values_only=True)}
    assert overview["失败"] == 1 and overview["通过"] == 50 and overview["规则覆盖率"] == "100.0%"
    datetime.strptime(str(overview["生成时间（北京时间）"]), "%Y-%m-%d %H:%M:%S+08:00")
    rows = list(book["规则集"].iter_rows(values_only=True))
    assert rows[0][:5] == ("规则集", "版本", "状态", "内容哈希（SHA-256）", "审计链位置")
    assert {r[0]: r[3] for r in rows[1:]} == {n: sha256_file(folder / f"{n}.yaml") for n in NAMES}
    assert {r[4] for r in rows[1:]} == {"未发布/工作副本"}
    cases = {r[1]: r for r in book["样例"].iter_rows(min_row=2, values_only=True)}
    failed = cases[FAILING]
    assert failed[4] == "失败" and failed[3] == 17
    assert failed[5] == "{type: assign, group: 费用审批岗}"
    assert "auto_approve()  ← expense-approval/报销审批#差旅费小额自动审批" in failed[7]
    assert "但没有这样的动作" in failed[8]
    assert {r[4] for name, r in cases.items() if name != FAILING} == {"通过"}
    coverage = list(book["覆盖率"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[3]) for r in coverage] == [(n, "100.0%") for n in NAMES]

    content = read_xlsx(written["xlsx"].read_bytes())
    assert content is not None and overview["报告摘要（SHA-256）"] == digest_of(content)
    assert verify_file(written["xlsx"]).ok
    book["样例"].cell(row=2, column=5).value = "失败"  # a passing case shown as failing
    altered = tmp_path / "altered.xlsx"
    book.save(altered)
    verdict = verify_file(altered)
    assert not verdict.ok and verdict.problems == ["工作表与报告内容不一致（单元格被改动）"]


def test_pdf_embeds_fonts_and_verifies(written: dict[str, Path], tmp_path: Path) -> None:
    require_pdf_tools()
    content = read_html(written["html"].read_text(encoding="utf-8"))
    assert content is not None
    evidence = Evidence(content)
    pdf = tmp_path / "证据.pdf"
    pdf.write_bytes(render_pdf(evidence))
    text = " ".join(read_pdf(pdf).split())
    assert "合规测试证据报告" in text and "未通过（1 个样例失败）" in text
    assert all(name in text for name in NAMES)
    assert f"内容哈希（SHA-256）：{content['rulesets'][1]['content_sha256']}" in text
    assert FAILING in text and "但没有这样的动作" in text
    assert f"SHA-256：{evidence.digest}" in text
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Noto-Sans-CJK" in fonts
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:])  # every font embedded
    assert verify_file(pdf).ok

    # A PDF stating the original digest over changed content does not verify.
    changed = json.loads(json.dumps(content))
    changed["cases"][0]["name"] = "另一个样例"
    forged = Evidence(changed)
    object.__setattr__(forged, "digest", evidence.digest)
    bad = tmp_path / "forged.pdf"
    bad.write_bytes(render_pdf(forged))
    assert not verify_file(bad).ok


def test_cli_refuses_unknown_report_format(folder: Path, tmp_path: Path) -> None:
    result = run("test", folder, "--report", tmp_path / "report.docx")
    assert result.exit_code == 2 and "证据文件须为 .html、.xlsx 或 .pdf" in result.output
    assert not (tmp_path / "report.docx").exists()


def test_xlsx_keeps_text_that_looks_like_a_formula(written: dict[str, Path], tmp_path: Path) -> None:
    content = read_html(written["html"].read_text(encoding="utf-8"))
    assert content is not None
    changed = json.loads(json.dumps(content))
    changed["cases"][0]["name"] = "=SUM(1,2) 金额"
    target = tmp_path / "formula.xlsx"
    target.write_bytes(render_xlsx(Evidence(changed)))
    assert load_workbook(target)["样例"]["B2"].value == "=SUM(1,2) 金额"
    assert verify_file(target).ok


def test_unreadable_content_is_a_problem_not_a_crash(written: dict[str, Path], tmp_path: Path) -> None:
    text = written["html"].read_text(encoding="utf-8")
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace('"summary": {', '"summary": [{', 1), encoding="utf-8")
    assert not verify_file(broken).ok
    other = tmp_path / "report.txt"
    other.write_text("x", encoding="utf-8")
    assert verify_file(other).problems == ["只能校验 .html、.xlsx、.pdf 证据文件"]
