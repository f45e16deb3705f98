from __future__ import annotations

from pathlib import Path

import pytest

from rulesvc.lang.diff import diff_rulesets
from rulesvc.lang.loader import RulesFolder, load_folder, load_ruleset

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"


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
    assert [str(c) for c in diff.changes] == ["决策表 报销审批 行 差旅费小额自动审批 金额: < 5000 → < 8000"]
    assert '-        金额: "< 5000"' in diff.text and '+        金额: "< 8000"' in diff.text


def test_rule_condition_change_and_added_removed_rules(folder: RulesFolder) -> None:
    old = folder.rulesets["loan-approval"]
    new = edited(folder, "loan-approval", ">= 5000000", ">= 8000000")
    diff = diff_rulesets(old, new)
    assert [(c.where, c.what, c.old, c.new) for c in diff.changes] == [
        ("规则 认定大额贷款", "条件", "ticket.amount >= 5000000", "ticket.amount >= 8000000")
    ]
    renamed = edited(folder, "loan-approval", "id: 大额贷款财务审核", "id: 大额贷款财务复核")
    diff = diff_rulesets(old, renamed)
    assert diff.added == [
        "规则 大额贷款财务复核（触发事件: ticket.created；条件: 大额贷款 → 发起会审（审核方: 财务审核））"
    ]
    assert diff.removed == [
        "规则 大额贷款财务审核（触发事件: ticket.created；条件: 大额贷款 → 发起会审（审核方: 财务审核））"
    ]


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
    assert (
        str(change)
        == "决策表 地区分派 默认行 动作: 分派（审批组: 总行信贷审批中心） → 分派（审批组: 总行信贷审批二部）"
    )


def test_an_added_row_shows_its_content(folder: RulesFolder) -> None:
    new = edited(
        folder,
        "loan-routing",
        "    default:",
        "      - id: 西安雁塔\n        地区: 西安雁塔\n        then:\n          - assign: {group: 西安分行信贷审批组}\n    default:",
    )
    diff = diff_rulesets(folder.rulesets["loan-routing"], new)
    assert diff.added == [
        "决策表 地区分派 行 西安雁塔（地区: 西安雁塔 → 分派（审批组: 西安分行信贷审批组））"
    ]
    assert diff.changes == [] and diff.removed == []
