"""Decision tables ↔ XLSX/CSV: round trips for every shipped table, errors positioned by cell, the CLI."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

import cli
from cli import tables as cli_tables
from rulesvc.lang.loader import RulesFolder, load_folder, load_ruleset
from rulesvc.lang.model import Ruleset, Table
from rulesvc.sheets import export_table_csv, export_table_xlsx, import_table, table_shape
from rulesvc.sheets.tables import _layout_of_events, _layout_of_positions

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"

OUTPUTS_TABLE = """\
ruleset: loan-risk
kind: loan
tables:
  - id: 风险等级
    on: [ticket.created]
    hit: priority
    inputs: {金额: ticket.amount, 评级: ticket.credit_rating}
    outputs:
      等级: [高, 中, 低]
      限额: number
    result: 风险
    rows:
      - {金额: ">= 10000000", 等级: 高, 限额: 0}
      - {id: 好评级, 评级: ">= A", 等级: 低, 限额: 5000000.50}
      - {id: 整百, 金额: "== 100", 等级: 低, 限额: 100}
      - {等级: 中, 限额: 1000000}
    default: {id: 其余, 等级: 中, 限额: 0}
  - id: 额度合计
    on: [ticket.created]
    hit: collect
    aggregate: sum
    inputs: {金额: ticket.amount}
    outputs: {额度: number}
    rows:
      - {金额: "< 100", 额度: 1}
      - {金额: "-", 额度: 2, then: [{assign: {group: 小额组}}]}
    default: {then: []}
"""


@pytest.fixture(scope="module")
def shipped() -> RulesFolder:
    folder, errors = load_folder([RULESETS])
    assert not errors
    return folder


def _tables(folder: RulesFolder) -> list[tuple[str, str]]:
    return [(r.name, t.id) for r in folder.rulesets.values() for t in r.tables]


def _round_trip(folder: RulesFolder, ruleset: Ruleset, table_id: str, fmt: str) -> Ruleset:
    kind = folder.kinds[ruleset.kind]
    data = (
        export_table_xlsx(ruleset, table_id, kind) if fmt == "xlsx" else export_table_csv(ruleset, table_id)
    )
    text, errors = import_table(f"t.{fmt}", data, ruleset, folder.kinds, folder.calendars)
    assert not errors and text is not None
    again, errors = load_ruleset(ruleset.file, text, folder.kinds, folder.calendars)
    assert again is not None and not errors
    return again


def test_every_shipped_table_is_exported(shipped: RulesFolder) -> None:
    assert len(_tables(shipped)) >= 3


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_every_shipped_table_round_trips(shipped: RulesFolder, fmt: str) -> None:
    for name, table_id in _tables(shipped):
        ruleset = shipped.rulesets[name]
        again = _round_trip(shipped, ruleset, table_id, fmt)
        for before, after in zip(ruleset.tables, again.tables, strict=True):
            assert table_shape(after) == table_shape(before), (name, before.id)
        assert [table_shape(r) for r in again.rules] == [table_shape(r) for r in ruleset.rules]


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_outputs_hit_policies_and_aggregates_round_trip(shipped: RulesFolder, fmt: str) -> None:
    """`== 100` starts with `=`: written as text, not a formula Excel would compute (and lose on reading)."""
    ruleset, errors = load_ruleset("loan-risk.yaml", OUTPUTS_TABLE, shipped.kinds, shipped.calendars)
    assert ruleset is not None and not errors, errors
    for table in ruleset.tables:
        again = _round_trip(shipped, ruleset, table.id, fmt)
        after = next(t for t in again.tables if t.id == table.id)
        assert table_shape(after) == table_shape(table)


def _sheet(shipped: RulesFolder, name: str = "expense-approval") -> tuple[Ruleset, object]:
    ruleset = shipped.rulesets[name]
    data = export_table_xlsx(ruleset, ruleset.tables[0].id, shipped.kinds[ruleset.kind])
    return ruleset, load_workbook(io.BytesIO(data))


def _import(shipped: RulesFolder, ruleset: Ruleset, book: object, file: str = "报销.xlsx") -> list[str]:
    out = io.BytesIO()
    book.save(out)  # type: ignore[attr-defined]
    text, errors = import_table(file, out.getvalue(), ruleset, shipped.kinds, shipped.calendars)
    assert text is None
    return [str(e) for e in errors]


def test_the_sheet_is_laid_out_for_people(shipped: RulesFolder) -> None:
    _ruleset, book = _sheet(shipped)
    sheet = book.active  # type: ignore[attr-defined]
    assert sheet.title == "报销审批"
    assert [c.value for c in sheet[1]][:4] == ["决策表", "报销审批", "命中策略", "first"]
    assert [c.value for c in sheet[3]][:6] == ["类型", "行号", "费用类型", "金额", "职级", "then"]
    assert [c.value for c in sheet[4]][2:5] == [
        "ticket.expense_type",
        "ticket.amount",
        "ticket.applicant_rank",
    ]
    assert [c.value for c in sheet[5]][:5] == ["行", "差旅费小额自动审批", "差旅费", "< 5000", ">= 部门经理"]
    assert [c.value for c in sheet[6]][:2] == ["默认", "默认"]
    lists = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists == {"E5:E206": '"员工,主管,部门经理,总监,副总经理,总经理"'}


def test_a_value_not_of_the_enum_is_reported_at_its_cell(shipped: RulesFolder) -> None:
    ruleset, book = _sheet(shipped)
    book.active["E5"] = ">= 部门经里"  # type: ignore[attr-defined]
    errors = _import(shipped, ruleset, book)
    assert errors[0].startswith('报销.xlsx!报销审批!E5: "部门经里" 不是 职级 的取值（是不是 "部门经理"？）')
    assert len(errors) == 1


def test_loader_errors_are_moved_to_their_cells(shipped: RulesFolder) -> None:
    ruleset, book = _sheet(shipped)
    sheet = book.active  # type: ignore[attr-defined]
    sheet["D5"] = "<< 5000"
    sheet["F6"] = "[{assign: {grup: 费用审批岗}}]"
    errors = _import(shipped, ruleset, book)
    assert sorted({e.split(": ")[0] for e in errors}) == ["报销.xlsx!报销审批!D5", "报销.xlsx!报销审批!F6"]


def test_structural_errors(shipped: RulesFolder) -> None:
    ruleset, book = _sheet(shipped)
    sheet = book.active  # type: ignore[attr-defined]
    sheet["A6"] = "行"
    sheet["F5"] = "[{assign: "
    sheet["D3"] = "金 额"
    errors = _import(shipped, ruleset, book)
    codes = [e.split(": ", 1)[0] for e in errors]
    assert "报销.xlsx!报销审批!D3" in codes


def test_csv_errors_name_the_file_and_cell(shipped: RulesFolder) -> None:
    ruleset = shipped.rulesets["expense-approval"]
    data = export_table_csv(ruleset, "报销审批").decode("utf-8-sig").replace(">= 部门经理", ">= 部门经里")
    text, errors = import_table("报销.csv", data.encode("utf-8"), ruleset, shipped.kinds, shipped.calendars)
    assert text is None
    assert str(errors[0]).startswith('报销.csv!E5: "部门经里" 不是 职级 的取值')


def test_missing_default_row(shipped: RulesFolder) -> None:
    ruleset, book = _sheet(shipped)
    book.active.delete_rows(6)  # type: ignore[attr-defined]
    errors = _import(shipped, ruleset, book)
    assert any("缺少默认行" in e for e in errors)


def test_cli_export_then_import(tmp_path: Path) -> None:
    if "tables" not in {g.name for g in cli.app.registered_groups}:
        cli_tables.register(cli.app)
    rules = tmp_path / "rules"
    shutil.copytree(RULESETS, rules, ignore=shutil.ignore_patterns("cases"))
    original = (rules / "expense-approval.yaml").read_text(encoding="utf-8")
    runner = CliRunner()
    sheet = tmp_path / "报销审批.xlsx"
    result = runner.invoke(
        cli.app, ["tables", "export", str(rules / "expense-approval.yaml"), "--out", str(sheet)]
    )
    assert result.exit_code == 0, result.output
    book = load_workbook(sheet)
    book.active["C5"] = "差旅费, 办公用品费"  # type: ignore[union-attr]
    book.save(sheet)
    result = runner.invoke(
        cli.app, ["tables", "import", str(sheet), "--ruleset", str(rules / "expense-approval.yaml")]
    )
    assert result.exit_code == 0, result.output
    changed = (rules / "expense-approval.yaml").read_text(encoding="utf-8")
    assert changed != original and "差旅费, 办公用品费" in changed
    folder, errors = load_folder([rules])
    assert not errors
    row = folder.rulesets["expense-approval"].tables[0].rows[0]
    assert row.cell_texts["费用类型"] == "差旅费, 办公用品费"


def test_a_broken_list_among_good_ones_is_reported_at_its_cell(shipped: RulesFolder) -> None:
    ruleset, book = _sheet(shipped)
    book.active["F5"] = "[{assign: {group: x}}]]"  # type: ignore[attr-defined]
    errors = _import(shipped, ruleset, book)
    assert any(e.startswith("报销.xlsx!报销审批!F5: 动作写法有误") for e in errors)


FLOW_TABLES = """\
ruleset: flow-routing
kind: loan
tables: [{id: 地区分派, on: [ticket.created], inputs: {地区: ticket.region}, rows: [{地区: 上海浦东, then: []}], default: {then: []}}]
"""


def test_the_table_is_found_alike_by_both_readers(shipped: RulesFolder) -> None:
    """Where a table's keys are is read from libyaml's events (fast) as the positioned reader reads it."""
    rulesets = [*shipped.rulesets.values()]
    for name, text in (("loan-risk.yaml", OUTPUTS_TABLE), ("flow-routing.yaml", FLOW_TABLES)):
        ruleset, errors = load_ruleset(name, text, shipped.kinds, shipped.calendars)
        assert ruleset is not None and not errors, errors
        rulesets.append(ruleset)
    seen = 0
    for ruleset in rulesets:
        lines = len(ruleset.source_text.splitlines())
        for table in ruleset.tables:
            fast = _layout_of_events(ruleset.source_text, table.id, lines)
            row_lines = [row.location.line - 1 for row in table.rows]
            assert _layout_of_events(ruleset.source_text, table.id, lines, row_lines) == fast
            assert fast == _layout_of_positions(ruleset, table.id, lines) or (
                fast is not None and fast.flow and _layout_of_positions(ruleset, table.id, lines).flow
            )
            seen += 1
    assert seen >= 6


def test_a_flow_style_table_is_rewritten_whole(shipped: RulesFolder) -> None:
    ruleset, errors = load_ruleset("flow-routing.yaml", FLOW_TABLES, shipped.kinds, shipped.calendars)
    assert ruleset is not None and not errors
    again = _round_trip(shipped, ruleset, "地区分派", "csv")
    assert table_shape(again.tables[0]) == table_shape(ruleset.tables[0])


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_an_unchanged_sheet_gives_the_file_back(shipped: RulesFolder, fmt: str) -> None:
    for name, table_id in _tables(shipped):
        ruleset = shipped.rulesets[name]
        kind = shipped.kinds[ruleset.kind]
        data = (
            export_table_csv(ruleset, table_id)
            if fmt == "csv"
            else export_table_xlsx(ruleset, table_id, kind)
        )
        text, errors = import_table(f"t.{fmt}", data, ruleset, shipped.kinds, shipped.calendars)
        assert not errors and text == ruleset.source_text, (name, table_id)


def test_rows_left_as_they_were_keep_their_text_and_comments(shipped: RulesFolder) -> None:
    ruleset = shipped.rulesets["loan-approval"]
    book = load_workbook(io.BytesIO(export_table_xlsx(ruleset, "审批级别", shipped.kinds["loan"])))
    sheet = book.active
    assert sheet is not None and sheet["B6"].value == "分行审批"
    sheet["C6"] = "< 20000000"
    out = io.BytesIO()
    book.save(out)
    text, errors = import_table("审批.xlsx", out.getvalue(), ruleset, shipped.kinds, shipped.calendars)
    assert not errors and text is not None
    before = ruleset.source_text.splitlines()
    after = text.splitlines()
    removed = [line for line in before if line not in after]
    added = [line for line in after if line not in before]
    assert added == [
        '      - {id: 分行审批, 金额: "< 20000000", 评级: ">= BBB", then: [set_approval_level: {level: 分行审批}]}'
    ]
    assert all(
        "分行审批" in line or "BBB" in line or "1000 万元" in line or "then:" in line for line in removed
    )
    assert (
        '        金额: "< 1000000"          # 不足 100 万元' in after
    )  # the row left alone, comment and all
    # the text written says what the sheet says: loaded again, every row as the sheet gives it
    again, errors = load_ruleset(ruleset.file, text, shipped.kinds, shipped.calendars)
    assert again is not None and not errors
    assert [r.cell_texts for r in again.tables[0].rows] == [
        {"金额": "< 1000000", "评级": ">= A"},
        {"金额": "< 20000000", "评级": ">= BBB"},
    ]
    assert table_shape(again.tables[0].default) == table_shape(ruleset.tables[0].default)


@pytest.mark.parametrize(
    "edit",
    ["one cell", "rows removed", "a row added", "a row moved", "the default"],
)
def test_the_text_written_reads_as_the_sheet_says(edit: str) -> None:
    """Rows kept as written and rows rewritten side by side: loaded again, the text gives the rows the sheet
    gives (the import does not load its result twice)."""
    from bench.engine.synthetic import KIND_YAML, make_table, ruleset_yaml
    from rulesvc.lang.kinds import load_kind
    from rulesvc.sheets.tables import load_table_sheet
    from rulesvc.sla.calendar import always_open

    kind, found = load_kind("kinds/route.yaml", KIND_YAML)
    assert kind is not None and not found
    kinds, calendars = {kind.kind: kind}, {"24x7": always_open()}
    text = ruleset_yaml(make_table(20)).replace("    rows:\n", "    rows:  # 按地区、金额分派\n")
    ruleset, found = load_ruleset("bench-routing.yaml", text, kinds, calendars)
    assert ruleset is not None and not found
    book = load_workbook(io.BytesIO(export_table_xlsx(ruleset, ruleset.tables[0].id, kind)))
    sheet = book.active
    assert sheet is not None
    if edit == "one cell":
        sheet["D9"] = "[100000..2000000)"
    elif edit == "rows removed":
        sheet.delete_rows(7, 3)
    elif edit == "a row added":
        sheet.insert_rows(10)
        for col, value in enumerate(["行", "新增", "地区99999", "[0..10)", "[{assign: {group: 新组}}]"], 1):
            sheet.cell(10, col, value)
    elif edit == "a row moved":
        moved = [c.value for c in sheet[6]]
        sheet.delete_rows(6)
        sheet.insert_rows(12)
        for col, value in enumerate(moved, 1):
            sheet.cell(12, col, value)
    else:
        sheet.cell(sheet.max_row, 5, "[{assign: {group: 兜底组}}]")
    out = io.BytesIO()
    book.save(out)
    written, loaded, errors = load_table_sheet("t.xlsx", out.getvalue(), ruleset, kinds, calendars)
    assert not errors and written is not None and loaded is not None
    assert written != text and "# 按地区、金额分派" in written
    again, found = load_ruleset("bench-routing.yaml", written, kinds, calendars)
    assert again is not None and not found, found[:3]

    def said(table: Table) -> list[object]:
        return [table_shape(row) for row in (*table.rows, table.default)]

    assert said(again.tables[0]) == said(loaded.tables[0])
