"""Compliance cases ↔ XLSX/CSV: round trips for every shipped case file, errors positioned by cell, the CLI."""

from __future__ import annotations

import io
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

import cli
from cli import cases as cli_cases
from rulesvc.cases.model import load_case_text
from rulesvc.lang.loader import RulesFolder, load_folder
from rulesvc.sheets import case_shape, export_cases_csv, export_cases_xlsx, import_cases

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"
CASE_FILES = sorted((RULESETS / "cases").glob("*.yaml"))


@pytest.fixture(scope="module")
def shipped() -> RulesFolder:
    folder, errors = load_folder([RULESETS])
    assert not errors
    return folder


def _export(shipped: RulesFolder, name: str, fmt: str) -> bytes:
    kind = shipped.kinds[shipped.rulesets[name].kind]
    text = (RULESETS / "cases" / f"{name}.yaml").read_text(encoding="utf-8")
    export = export_cases_xlsx if fmt == "xlsx" else export_cases_csv
    return export(f"cases/{name}.yaml", text, name, kind)


def _import(
    shipped: RulesFolder, name: str, file: str, data: bytes, old: str = ""
) -> tuple[str | None, list[str]]:
    kind = shipped.kinds[shipped.rulesets[name].kind]
    text, errors = import_cases(
        file, data, name, kind, shipped.kinds, case_file=f"cases/{name}.yaml", old_text=old
    )
    return text, [str(e) for e in errors]


def test_every_ruleset_has_its_shipped_case_file(shipped: RulesFolder) -> None:
    assert [f.stem for f in CASE_FILES] == sorted(shipped.rulesets)


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
@pytest.mark.parametrize("case_file", CASE_FILES, ids=lambda p: p.stem)
def test_every_shipped_case_file_round_trips(shipped: RulesFolder, case_file: Path, fmt: str) -> None:
    name = case_file.stem
    original = case_file.read_text(encoding="utf-8")
    text, errors = _import(shipped, name, f"样例.{fmt}", _export(shipped, name, fmt))
    assert not errors and text is not None
    before, found = load_case_text(str(case_file), original, shipped.kinds)
    after, found_after = load_case_text(str(case_file), text, shipped.kinds)
    assert not found and not found_after
    assert len(before) > 0
    assert [case_shape(c) for c in after] == [case_shape(c) for c in before]
    # imported over the file it came from, nothing changes: not even a comment
    again, errors = _import(shipped, name, f"样例.{fmt}", _export(shipped, name, fmt), old=original)
    assert not errors and again == original


def _book(shipped: RulesFolder, name: str = "expense-approval") -> Workbook:
    return load_workbook(io.BytesIO(_export(shipped, name, "xlsx")))


def _errors(shipped: RulesFolder, book: Workbook, name: str = "expense-approval") -> list[str]:
    out = io.BytesIO()
    book.save(out)
    text, errors = _import(shipped, name, "报销样例.xlsx", out.getvalue())
    assert text is None
    return errors


def test_the_sheet_is_laid_out_for_people(shipped: RulesFolder) -> None:
    sheet = _book(shipped).active
    assert sheet is not None and sheet.title == "合规样例"
    assert [c.value for c in sheet[1]][:4] == ["合规样例", "expense-approval", "工单类型", "expense"]
    assert [c.value for c in sheet[3]] == [
        "name",
        "description",
        "type",
        "at",
        "ticket.kind",
        "ticket.id",
        "ticket.expense_type",
        "ticket.amount",
        "ticket.applicant_rank",
        "ticket.applicant",
        "ticket.email",
        "until",
        "expect",
        "expect_not",
    ]
    first = [c.value for c in sheet[4]]
    assert first[:9] == [
        "差旅费4999.99元部门经理自动审批并付款",
        None,
        "ticket.created",
        "2026-11-02 10:00",
        "expense",
        "E-2026-0001",
        "差旅费",
        "4999.99",
        "部门经理",
    ]
    assert first[12] == "{type: auto_approve}\n{type: trigger_payment, amount: 4999.99}"
    assert first[13] == "{type: assign}"
    lists = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists["C4:C214"].startswith('"ticket.created,ticket.updated')
    assert lists["I4:I214"] == '"员工,主管,部门经理,总监,副总经理,总经理"'


def test_a_case_of_several_events_is_one_row_per_event(shipped: RulesFolder) -> None:
    sheet = _book(shipped, "complaint-sla").active
    assert sheet is not None
    assert [sheet.cell(r, 1).value for r in (4, 5, 6)] == [
        "1小时内受理不提醒不升级",
        None,
        "1小时29分受理预警前停止计时",
    ]
    assert sheet.cell(5, 3).value == "ticket.accepted"


def test_bad_cells_are_reported_where_they_are(shipped: RulesFolder) -> None:
    book = _book(shipped)
    sheet = book.active
    assert sheet is not None
    sheet["I4"] = "部门经里"
    sheet["D5"] = "2026-11-31 10:00"
    sheet["C6"] = "ticket.create"
    sheet["H7"] = "五千"
    sheet["M8"] = "{type: auto_approve\n{type: trigger_payment}"
    errors = _errors(shipped, book)
    assert errors == [
        '报销样例.xlsx!合规样例!I4: "部门经里" 不是 职级 的取值（是不是 "部门经理"？）'
        "（提示：职级 的取值：员工、主管、部门经理、总监、副总经理、总经理）",
        '报销样例.xlsx!合规样例!D5: "2026-11-31 10:00" 不是时间'
        "（提示：写成 2026-11-02 10:00（北京时间），或带时区 2026-11-02T10:00:00+08:00）",
        '报销样例.xlsx!合规样例!C6: "ticket.create" 不是事件类型（是不是 "ticket.created"？）'
        "（提示：事件类型：ticket.created、ticket.updated、ticket.accepted、ticket.resolved、ticket.paused、"
        "ticket.resumed）",
        errors[3],
        errors[4],
    ]
    assert errors[3].startswith("报销样例.xlsx!合规样例!H7: ")  # amount: the kind's check, at its cell
    assert errors[4].startswith("报销样例.xlsx!合规样例!M8: 第 1 个动作写法有误")


def test_the_kinds_check_is_at_the_field_cell(shipped: RulesFolder) -> None:
    book = _book(shipped)
    sheet = book.active
    assert sheet is not None
    sheet["H6"] = "-5"
    sheet["F7"] = None
    errors = _errors(shipped, book)
    assert [e.split(": ")[0] for e in errors] == ["报销样例.xlsx!合规样例!H6", "报销样例.xlsx!合规样例!F7"]


def test_an_unknown_column_is_named_with_a_guess(shipped: RulesFolder) -> None:
    book = _book(shipped)
    sheet = book.active
    assert sheet is not None
    sheet["H3"] = "ticket.amout"
    errors = _errors(shipped, book)
    assert errors[0].startswith(
        "报销样例.xlsx!合规样例!H3: 没有「ticket.amout」这一列（是不是「ticket.amount」？）"
    )
    assert len(errors) == 1


def test_rows_must_belong_to_a_case(shipped: RulesFolder) -> None:
    book = _book(shipped)
    sheet = book.active
    assert sheet is not None
    sheet["A4"] = None
    errors = _errors(shipped, book)
    assert errors[0].startswith("报销样例.xlsx!合规样例!A4: 第一个事件行须写样例名称")
    book = _book(shipped)
    sheet = book.active
    assert sheet is not None
    sheet["A5"] = None  # row 5 is now a second event of case 1, yet it still says what case 2 expects
    errors = _errors(shipped, book)
    assert any(
        e.startswith("报销样例.xlsx!合规样例!M5: 「期望动作（每行一个）」写在样例的第一行") for e in errors
    )


def test_a_duplicate_case_name_is_at_the_name_cell(shipped: RulesFolder) -> None:
    book = _book(shipped)
    sheet = book.active
    assert sheet is not None
    sheet["A5"] = sheet["A4"].value
    errors = _errors(shipped, book)
    assert len(errors) == 1 and errors[0].startswith("报销样例.xlsx!合规样例!A5: ")


def test_another_rulesets_sheet_is_refused(shipped: RulesFolder) -> None:
    data = _export(shipped, "loan-sla", "csv")
    text, errors = _import(shipped, "expense-approval", "信贷.csv", data)
    assert text is None
    assert errors[0].startswith("信贷.csv!B1: 这张表是规则集「loan-sla」的合规样例")


def test_a_case_typed_in_excel_is_imported(shipped: RulesFolder) -> None:
    """Excel turns typed numbers and times into numbers and dates; a time without an offset is Beijing time."""
    book = _book(shipped)
    sheet = book.active
    assert sheet is not None
    row = sheet.max_row + 1
    for col, value in {
        1: "总监报销5000整转人工",
        3: "ticket.created",
        4: datetime(2026, 11, 3, 9, 30),
        6: "E-2026-0100",
        7: "差旅费",
        8: 5000,
        9: "总监",
        13: "type: assign, group: 费用审批岗",
        14: "{type: auto_approve}",
    }.items():
        sheet.cell(row, col, value)
    out = io.BytesIO()
    book.save(out)
    text, errors = _import(shipped, "expense-approval", "报销样例.xlsx", out.getvalue())
    assert not errors and text is not None
    cases, found = load_case_text("cases/expense-approval.yaml", text, shipped.kinds)
    assert not found
    added = cases[-1]
    assert added.name == "总监报销5000整转人工"
    assert added.events[0].occurred_at.isoformat() == "2026-11-03T09:30:00+08:00"
    assert str(added.events[0].ticket["amount"]) == "5000"
    assert added.events[0].ticket["kind"] == "expense"
    assert added.expect == ({"type": "assign", "group": "费用审批岗"},)


def test_a_workbook_without_a_cases_sheet(shipped: RulesFolder) -> None:
    out = io.BytesIO()
    Workbook().save(out)
    text, errors = _import(shipped, "expense-approval", "空.xlsx", out.getvalue())
    assert text is None and errors[0].startswith("空.xlsx!Sheet!A1: 没有找到合规样例的工作表")


def test_cli_export_then_import(tmp_path: Path) -> None:
    if "cases" not in {g.name for g in cli.app.registered_groups}:
        cli_cases.register(cli.app)
    rules = tmp_path / "rules"
    shutil.copytree(RULESETS, rules)
    case_file = rules / "cases" / "expense-approval.yaml"
    original = case_file.read_text(encoding="utf-8")
    runner = CliRunner()
    sheet = tmp_path / "报销样例.xlsx"
    ruleset = str(rules / "expense-approval.yaml")
    result = runner.invoke(cli.app, ["cases", "export", ruleset, "--out", str(sheet)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.app, ["cases", "import", str(sheet), "--ruleset", ruleset])
    assert result.exit_code == 0, result.output
    assert case_file.read_text(encoding="utf-8") == original
    book = load_workbook(sheet)
    book.active["H4"] = "4999.98"
    book.active["I5"] = "部门经里"
    book.save(sheet)
    result = runner.invoke(cli.app, ["cases", "import", str(sheet), "--ruleset", ruleset])
    assert result.exit_code == 1
    assert "报销样例.xlsx!合规样例!I5: " in result.output
    assert case_file.read_text(encoding="utf-8") == original
    book.active["I5"] = "部门经理"
    book.save(sheet)
    result = runner.invoke(cli.app, ["cases", "import", str(sheet), "--ruleset", ruleset])
    assert result.exit_code == 0, result.output
    changed = case_file.read_text(encoding="utf-8")
    assert "amount: 4999.98" in changed
    assert changed.startswith("# 合规样例：差旅费小额报销自动审批")  # the header comment is kept
    old_line = "amount: 4999.99, applicant_rank: 部门经理, applicant: 张三}"
    assert changed == original.replace(old_line, old_line.replace("4999.99", "4999.98"))
