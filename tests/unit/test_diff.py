from __future__ import annotations

from pathlib import Path

import pytest

from rulesvc.lang.diff import diff_rulesets
from rulesvc.lang.loader import RulesFolder, load_folder, load_ruleset

RULESETS = Path(__file__).resolve().parents[2] / "rulesets"


@pytest.fixture(scope="module")
def folder() -> RulesFolder:
    loaded, errors = load_folder([RULESETS])
    assert not errors
    return loaded


def edited(folder: RulesFolder, name: str, old: str, new: str):  # type: ignore[no-untyped-def]
    source = folder.rulesets[name].source_text
    assert old in source
    ruleset, errors = load_ruleset(f"{name}.yaml", source.replace(old, new), folder.kinds, folder.calendars)
    assert not errors and ruleset is not None
    return ruleset


def test_threshold_in_table_cell_is_reported_old_to_new(folder: RulesFolder) -> None:
    new = edited(folder, "expense-approval", '"< 5000"', '"< 8000"')
    diff = diff_rulesets(folder.rulesets["expense-approval"], new)
    assert [str(c) for c in diff.changes] == ["table 报销审批 row 差旅费小额自动审批 金额: < 5000 → < 8000"]
    assert '-        金额: "< 5000"' in diff.text and '+        金额: "< 8000"' in diff.text


def test_rule_condition_change_and_added_removed_rules(folder: RulesFolder) -> None:
    old = folder.rulesets["loan-approval"]
    new = edited(folder, "loan-approval", ">= 5000000", ">= 8000000")
    diff = diff_rulesets(old, new)
    assert [(c.where, c.what, c.old, c.new) for c in diff.changes] == [
        ("rule 认定大额贷款", "when", "ticket.amount >= 5000000", "ticket.amount >= 8000000")
    ]
    renamed = edited(folder, "loan-approval", "id: 大额贷款财务审核", "id: 大额贷款财务复核")
    diff = diff_rulesets(old, renamed)
    assert diff.added == ["rule 大额贷款财务复核"] and diff.removed == ["rule 大额贷款财务审核"]


def test_identical_versions_have_empty_diff(folder: RulesFolder) -> None:
    ruleset = folder.rulesets["complaint-sla"]
    diff = diff_rulesets(ruleset, ruleset)
    assert diff.empty and diff.text == ""
    assert diff.to_json()["changed"] == []


def test_action_parameter_change(folder: RulesFolder) -> None:
    new = edited(folder, "loan-routing", "group: 总行信贷审批中心", "group: 总行信贷审批二部")
    diff = diff_rulesets(folder.rulesets["loan-routing"], new)
    assert len(diff.changes) == 1
    change = diff.changes[0]
    assert change.what == "then" and "总行信贷审批中心" in change.old and "总行信贷审批二部" in change.new
