"""Every DMN hit policy of our decision tables (unique, any, priority, first, rule_order, output_order,
collect with and without sum/min/max/count), outputs asserted as derived facts, tables chained through those
facts, and the positioned `rulesvc check` errors of the new keys."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rulesvc.errors import InvalidRulesetError, RuleRuntimeError
from rulesvc.events import event_from_json
from rulesvc.lang.loader import load_folder
from rulesvc.model import Decision
from rulesvc.rulebook import RuleBook

KIND = """\
kind: loan
enums:
  信用评级: [C, B, BB, BBB, A, AA, AAA]
fields:
  id: string
  region: string
  amount: number
  age: number
  credit_rating: 信用评级
"""


def folder(root: Path, ruleset: str) -> Path:
    (root / "kinds").mkdir(exist_ok=True)
    (root / "kinds" / "loan.yaml").write_text(KIND, encoding="utf-8")
    (root / "r.yaml").write_text(textwrap.dedent(ruleset), encoding="utf-8")
    return root


def table(hit: str, rows: str, *, outputs: str, extra: str = "", default: str = "{then: []}") -> str:
    lines = [
        "ruleset: r",
        "kind: loan",
        "tables:",
        "  - id: 结果表",
        "    on: [ticket.created]",
        f"    hit: {hit}",
        *([f"    {extra}"] if extra else []),
        "    inputs: {年龄: ticket.age, 地区: ticket.region}",
        f"    outputs: {outputs}",
        "    result: 结果",
        "    rows:",
        *("      " + line for line in textwrap.dedent(rows).splitlines()),
        f"    default: {default}",
        "rules:",
        "  - id: 报告",
        "    on: [ticket.created]",
        "    when: 结果",
        "    then:",
        "      - assign: {group: 已决}",
    ]
    return "\n".join(lines) + "\n"


def decide(root: Path, **ticket: Any) -> Decision:
    book = RuleBook.load([root])
    return book.evaluate(
        event_from_json(
            {
                "event_id": "e-1",
                "type": "ticket.created",
                "occurred_at": "2026-11-02T09:00:00+08:00",
                "ticket": {"kind": "loan", "id": "L-1", **ticket},
            }
        )
    )


def result(root: Path, **ticket: Any) -> Any:
    """The table's result fact as the rule sees it (None when not asserted)."""
    run = (
        RuleBook.load([root])
        .compiled["r"]
        .evaluate(
            event_from_json(
                {
                    "event_id": "e-1",
                    "type": "ticket.created",
                    "occurred_at": "2026-11-02T09:00:00+08:00",
                    "ticket": {"kind": "loan", "id": "L-1", **ticket},
                }
            ),
            {"ticket": {"kind": "loan", **ticket}},
        )
    )
    fact = run.facts.get("结果")
    return None if fact is None else {k: v for k, v in fact.items() if k != "_t"}


ROWS = """\
- {id: 成年, 年龄: ">= 18", 级别: 批准, 费率: 标准}
- {id: 青年, 年龄: "[18..25]", 级别: 拒绝, 费率: 基础}
- {id: 未成年, 年龄: "< 18", 级别: 拒绝, 费率: 标准}
"""
OUTPUTS = "{级别: [拒绝, 批准], 费率: string}"


def test_first_takes_the_first_matching_row(tmp_path: Path) -> None:
    rows = "\n".join([*ROWS.splitlines()[1:2], *ROWS.splitlines()[0:1], *ROWS.splitlines()[2:]])
    root = folder(tmp_path, table("first", rows, outputs=OUTPUTS))
    assert result(root, age=20) == {"级别": "拒绝", "费率": "基础"}
    assert result(root, age=30) == {"级别": "批准", "费率": "标准"}
    assert result(root, age=10) == {"级别": "拒绝", "费率": "标准"}


def test_priority_takes_the_row_whose_output_comes_first(tmp_path: Path) -> None:
    root = folder(tmp_path, table("priority", ROWS, outputs=OUTPUTS))
    assert result(root, age=20) == {"级别": "拒绝", "费率": "基础"}  # 拒绝 is listed first
    assert result(root, age=30) == {"级别": "批准", "费率": "标准"}


def test_rule_order_and_collect_list_every_match_in_table_order(tmp_path: Path) -> None:
    for hit in ("rule_order", "collect"):
        root = folder(tmp_path, table(hit, ROWS, outputs=OUTPUTS))
        assert result(root, age=20) == {"级别": ["批准", "拒绝"], "费率": ["标准", "基础"]}
        fired = [f.rule for f in decide(root, age=20).fired]
        assert fired[:2] == ["结果表#成年", "结果表#青年"]


def test_output_order_sorts_matches_by_output_priority(tmp_path: Path) -> None:
    root = folder(tmp_path, table("output_order", ROWS, outputs=OUTPUTS))
    assert result(root, age=20) == {"级别": ["拒绝", "批准"], "费率": ["基础", "标准"]}
    assert [f.rule for f in decide(root, age=20).fired][:2] == ["结果表#青年", "结果表#成年"]


SCORES = """\
- {年龄: "> 1", 分: 98.83}
- {年龄: "> 2", 分: 150.21}
- {年龄: "> 3", 分: 205.43}
"""


@pytest.mark.parametrize(
    ("how", "expected"),
    [("sum", Decimal("454.47")), ("min", Decimal("98.83")), ("max", Decimal("205.43")), ("count", 3)],
)
def test_collect_aggregations(tmp_path: Path, how: str, expected: Decimal) -> None:
    root = folder(tmp_path, table("collect", SCORES, outputs="{分: number}", extra=f"aggregate: {how}"))
    assert result(root, age=5) == {"分": expected}
    assert result(root, age=1) is None  # nothing matched, the default row has no outputs: no fact


def test_unique_violation_is_a_positioned_runtime_error(tmp_path: Path) -> None:
    rows = """\
    - {地区: 'contains "浦东"', 级别: 批准}
    - {地区: 'startswith "上海"', 级别: 批准}
    """
    # `check` cannot prove that string tests overlap: the engine finds it
    root = folder(tmp_path, table("unique", rows, outputs="{级别: string}"))
    assert result(root, region="北京") is None
    with pytest.raises(RuleRuntimeError) as caught:
        decide(root, region="上海浦东")
    assert caught.value.code == "rule.unique_conflict"
    assert caught.value.location is not None and caught.value.location.line == 12


def test_any_allows_agreeing_rows_and_refuses_disagreeing_ones(tmp_path: Path) -> None:
    rows = """\
    - {年龄: "> 10", 级别: 批准}
    - {年龄: "> 20", 级别: 批准}
    """
    root = folder(tmp_path, table("any", rows, outputs="{级别: string}"))
    assert result(root, age=25) == {"级别": "批准"}
    disagreeing = rows.replace('"> 20", 级别: 批准', '"> 20", 级别: 拒绝')
    folder(tmp_path, table("any", disagreeing, outputs="{级别: string}"))
    _folder, errors = load_folder([root])
    assert [e.code for e in errors] == ["overlapping_rows"]
    hidden = """\
    - {地区: 'contains "浦东"', 级别: 批准}
    - {地区: 'startswith "上海"', 级别: 拒绝}
    """  # not provable: the engine refuses it
    folder(tmp_path, table("any", hidden, outputs="{级别: string}"))
    with pytest.raises(RuleRuntimeError) as caught:
        decide(root, region="上海浦东")
    assert caught.value.code == "rule.any_conflict"


def test_default_row_outputs_apply_when_nothing_matches(tmp_path: Path) -> None:
    rows = '- {年龄: "> 60", 级别: 拒绝}\n'
    root = folder(tmp_path, table("unique", rows, outputs="{级别: string}", default="{级别: 批准}"))
    assert result(root, age=30) == {"级别": "批准"}
    assert result(root, age=61) == {"级别": "拒绝"}


def test_tables_chain_through_their_result_facts(tmp_path: Path) -> None:
    ruleset = """\
    ruleset: r
    kind: loan
    tables:
      - id: 风险
        on: [ticket.created]
        inputs: {金额: ticket.amount}
        outputs: {等级: [高, 低]}
        rows:
          - {金额: ">= 1000000", 等级: 高}
          - {金额: "< 1000000", 等级: 低}
        default: {then: []}
      - id: 审批
        on: [ticket.created]
        hit: unique
        inputs: {风险等级: 风险.等级}
        outputs: {岗位: string}
        result: 审批岗位
        rows:
          - {风险等级: 高, 岗位: 总行}
          - {风险等级: 低, 岗位: 支行}
        default: {then: []}
    rules:
      - id: 分派
        on: [ticket.created]
        when: 审批岗位
        then:
          - assign: {group: 审批岗位.岗位}
    """
    root = folder(tmp_path, ruleset)
    assert decide(root, amount=5000000).actions_json()[0]["group"] == "总行"
    assert decide(root, amount=5000).actions_json()[0]["group"] == "支行"


@pytest.mark.parametrize(
    ("hit", "extra", "outputs", "code"),
    [
        ("firts", "", "{级别: string}", "bad_hit_policy"),
        ("first", "aggregate: sum", "{级别: number}", "bad_aggregate"),
        ("collect", "aggregate: avg", "{级别: number}", "bad_aggregate"),
        ("collect", "aggregate: sum", "{级别: string}", "bad_aggregate"),
        ("priority", "", "{级别: string}", "missing_output_order"),
        ("first", "", "{级别: strnig}", "unknown_type"),
    ],
)
def test_check_errors_are_positioned(tmp_path: Path, hit: str, extra: str, outputs: str, code: str) -> None:
    rows = '- {年龄: "> 60", 级别: 1}\n'
    root = folder(tmp_path, table(hit, rows, outputs=outputs, extra=extra))
    _folder, errors = load_folder([root])
    assert code in [e.code for e in errors]
    found = next(e for e in errors if e.code == code)
    assert found.location.file.endswith("r.yaml") and found.location.line > 1


def test_an_output_value_not_listed_is_an_error(tmp_path: Path) -> None:
    rows = '- {年龄: "> 60", 级别: 批注}\n'
    root = folder(tmp_path, table("first", rows, outputs="{级别: [拒绝, 批准]}"))
    with pytest.raises(InvalidRulesetError) as caught:
        RuleBook.load([root])
    (error,) = caught.value.errors
    assert error.code == "bad_output_value" and error.hint is not None and "批准" in error.hint


def test_simulator_decides_as_the_engine(tmp_path: Path) -> None:
    """`rulesvc simulate`'s path (rulesvc.sla.simulation) gives the actions RuleBook.evaluate gives, for a
    table with outputs chained into a rule."""
    from datetime import datetime

    from rulesvc.sla.simulation import simulate

    rows = """\
    - {年龄: "> 10", 级别: 批准}
    - {年龄: "> 20", 级别: 拒绝}
    """
    root = folder(tmp_path, table("output_order", rows, outputs="{级别: [拒绝, 批准]}"))
    book = RuleBook.load([root])
    event = event_from_json(
        {
            "event_id": "e-1",
            "type": "ticket.created",
            "occurred_at": "2026-11-02T09:00:00+08:00",
            "ticket": {"kind": "loan", "id": "L-1", "age": 30},
        }
    )
    timeline = simulate(book, [event], datetime.fromisoformat("2026-11-02T12:00:00+08:00"))
    simulated = [a for entry in timeline.entries for a in entry.decision.actions_json()]
    assert simulated == book.evaluate(event).actions_json()
    assert [f["rule"] for entry in timeline.entries for f in entry.decision.fired_json()][:2] == [
        "结果表#行2",
        "结果表#行1",
    ]
    assert result(root, age=30) == {"级别": ["拒绝", "批准"]}
