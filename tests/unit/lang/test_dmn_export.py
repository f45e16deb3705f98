"""Our tables → DMN → our tables: the export is readable (Chinese names stay), another import gives tables
that export identically and decide the same, and what DMN cannot express is refused where it stands."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from cli.dmn import evaluate, write_folder
from rulesvc.errors import InvalidRulesetError
from rulesvc.lang.dmn_export import export_dmn
from rulesvc.lang.loader import load_folder

ROOT = Path(__file__).resolve().parents[3]
RULESET = """\
ruleset: 贷款风险
kind: loan
description: 风险等级与审批岗位
tables:
  - id: 风险等级表
    description: 按金额与评级定风险
    on: [ticket.created]
    hit: priority
    inputs: {金额: ticket.amount, 评级: ticket.credit_rating}
    outputs:
      等级: [高, 中, 低]
      限额: number
    result: 风险
    rows:
      - {id: 大额, 金额: ">= 10000000", 等级: 高, 限额: 0}
      - {id: 优质, 评级: ">= A", 等级: 低, 限额: 5000000.50}
      - {id: 区间, 金额: "[1000..5000)", 评级: "BB, BBB", 等级: 中, 限额: 1000000}
      - {id: 其他, 金额: "!= 7", 等级: 中, 限额: 1}
    default: {等级: 中, 限额: 0}
  - id: 审批岗位
    on: [ticket.created]
    hit: collect
    aggregate: count
    inputs: {等级: 风险.等级}
    outputs: {岗位数: number}
    rows:
      - {等级: 高, 岗位数: 2}
      - {等级: "中, 低", 岗位数: 1}
      - {等级: "not in [低]", 岗位数: 1}
    default: {then: []}
"""


def folder(root: Path, text: str = RULESET) -> Path:
    (root / "kinds").mkdir(parents=True)
    shutil.copy(ROOT / "rulesets" / "kinds" / "loan.yaml", root / "kinds" / "loan.yaml")
    (root / "r.yaml").write_text(text, encoding="utf-8")
    return root


def exported(root: Path, name: str = "贷款风险") -> str:
    loaded, errors = load_folder([root])
    assert errors == []
    return export_dmn(loaded.rulesets[name], loaded.kinds)


def test_export_is_readable_and_round_trips(tmp_path: Path) -> None:
    dmn = exported(folder(tmp_path / "a"))
    assert 'name="风险"' in dmn and 'label="风险等级表"' in dmn and "<description>优质</description>" in dmn
    assert '"A", "AA", "AAA"' in dmn  # >= A on the ordered enum: the members it accepts
    assert "[1000..5000)" in dmn and "not(7)" in dmn and "5000000.50" in dmn
    again = tmp_path / "b"
    write_folder("m.dmn", dmn, again)
    assert exported(again) == dmn
    for amount, rating, expected in [
        (20000000, "AAA", {"等级": "高", "限额": 0}),
        (3000, "BBB", {"等级": "中", "限额": 1000000}),
        (3000, "AA", {"等级": "中", "限额": 1}),  # 优质 (低) and 其他 (中) match: 中 comes first
        (7, "AA", {"等级": "低", "限额": Decimal("5000000.50")}),
        (7, "C", {"等级": "中", "限额": 0}),  # nothing matches: the default outputs
    ]:
        inputs = {"amount": amount, "credit_rating": rating}
        assert evaluate("m.dmn", dmn, "风险", inputs) == expected
    assert evaluate("m.dmn", dmn, "审批岗位", {"amount": 20000000, "credit_rating": "C"}) == 2


def test_tables_with_actions_or_string_tests_are_refused(tmp_path: Path) -> None:
    root = folder(tmp_path / "a")
    shutil.copy(ROOT / "rulesets" / "loan-routing.yaml", root / "loan-routing.yaml")
    loaded, errors = load_folder([root])
    assert errors == []
    with pytest.raises(InvalidRulesetError) as caught:
        export_dmn(loaded.rulesets["loan-routing"], loaded.kinds)
    assert all(e.code == "dmn.export_unsupported" for e in caught.value.errors)
    assert all(e.location.file.endswith("loan-routing.yaml") for e in caught.value.errors)
