"""A case changed from the console's form: name, ticket fields and expectations rewritten, the rest of the
file (other cases, comments, event times) left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from rulesvc.cases.caseedit import CaseEdit, CaseEditError, edit_case

CASES = (Path(__file__).resolve().parents[3] / "rulesets" / "cases" / "expense-approval.yaml").read_text(
    "utf-8"
)
TYPES = {"amount": "decimal", "expense_type": "string"}
TICKET = {
    "kind": "expense",
    "id": "E-2026-0002",
    "expense_type": "差旅费",
    "amount": "8000",
    "applicant_rank": "部门经理",
    "applicant": "李四",
    "email": "",
}


def test_name_ticket_and_expectations_rewritten_the_rest_kept() -> None:
    edit = CaseEdit(
        "差旅费8000元整不自动审批转人工",
        {0: TICKET},
        ["{type: assign, group: 费用审批岗}"],
        ["type: auto_approve"],
    )
    new = edit_case(CASES, 1, edit, TYPES)
    case = YAML(typ="safe").load(new)["cases"][1]
    assert case["name"] == "差旅费8000元整不自动审批转人工"
    assert case["given"][0]["ticket"]["amount"] == 8000 and "email" not in case["given"][0]["ticket"]
    assert case["expect"] == [{"type": "assign", "group": "费用审批岗"}]
    assert case["expect_not"] == [{"type": "auto_approve"}]
    assert "at: 2026-11-02T10:05:00+08:00" in new
    assert new.replace("差旅费8000元整", "差旅费5000元整").count("\n") == CASES.count("\n") - 1
    assert YAML(typ="safe").load(new)["cases"][2] == YAML(typ="safe").load(CASES)["cases"][2]


def test_a_malformed_expectation_is_refused() -> None:
    with pytest.raises(CaseEditError, match="type"):
        edit_case(CASES, 1, CaseEdit("x", {}, ["{group: 费用审批岗}"]), TYPES)
    with pytest.raises(CaseEditError, match="没有第"):
        edit_case(CASES, 99, CaseEdit("x"), TYPES)
