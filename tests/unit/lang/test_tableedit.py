"""Grid edits written into a ruleset file: only the changed cells' tokens change, rows move, copy and go
as whole blocks, comments stay."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from rulesvc.lang.tableedit import RowEdit, TableEditError, edit_table, scalar

EXPENSE = (Path(__file__).resolve().parents[3] / "rulesets" / "expense-approval.yaml").read_text("utf-8")
ROW = "差旅费小额自动审批"
CELLS = {"费用类型": "差旅费", "金额": "< 5000", "职级": ">= 部门经理"}


def changed_lines(old: str, new: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_one_cell_changes_one_token_in_its_quoting_style() -> None:
    new = edit_table(EXPENSE, "报销审批", [RowEdit(ROW, ROW, {**CELLS, "金额": "< 8000"})])
    assert changed_lines(EXPENSE, new) == ['-        金额: "< 5000"', '+        金额: "< 8000"']


def test_unchanged_rows_leave_the_file_as_it_was() -> None:
    assert edit_table(EXPENSE, "报销审批", [RowEdit(ROW, ROW, CELLS)]) == EXPENSE


def test_copy_empty_a_cell_and_move_rows() -> None:
    rows = [RowEdit("招待费", ROW, {**CELLS, "费用类型": "招待费", "职级": ""}), RowEdit(ROW, ROW, CELLS)]
    new = edit_table(EXPENSE, "报销审批", rows)
    assert new.index("- id: 招待费") < new.index(f"- id: {ROW}")
    block = new[new.index("- id: 招待费") : new.index(f"- id: {ROW}")]
    assert "职级" not in block and "费用类型: 招待费" in block and "auto_approve" in block
    assert "# 其余报销单转人工审批" in new  # comments kept


def test_refusals() -> None:
    with pytest.raises(TableEditError, match="没有决策表"):
        edit_table(EXPENSE, "无此表", [RowEdit(ROW, ROW, CELLS)])
    with pytest.raises(TableEditError, match="没有行"):
        edit_table(EXPENSE, "报销审批", [RowEdit("x", "x", CELLS)])
    with pytest.raises(TableEditError, match="重复"):
        edit_table(EXPENSE, "报销审批", [RowEdit(ROW, ROW, CELLS), RowEdit(ROW, ROW, CELLS)])


@pytest.mark.parametrize(
    ("text", "quoted", "expected"),
    [
        ("差旅费", False, "差旅费"),
        (">= 部门经理", False, '">= 部门经理"'),
        ("true", False, '"true"'),
        ("a", True, '"a"'),
    ],
)
def test_scalars_read_back_as_typed(text: str, quoted: bool, expected: str) -> None:
    assert scalar(text, quoted) == expected
