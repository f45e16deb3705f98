"""GoRules JDM: our tables → JDM → our tables gives the same JDM, ZEN (zen-engine, an independent
evaluator) decides the export as our engine decides the table, and what JDM cannot express is refused."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zen

from rulesvc.engine.compiler import base_scope
from rulesvc.errors import InvalidRulesetError
from rulesvc.events import event_from_json
from rulesvc.lang.jdm import export_jdm, import_jdm
from rulesvc.lang.loader import load_folder
from rulesvc.rulebook import RuleBook

ROOT = Path(__file__).resolve().parents[3]
RULESET = """\
ruleset: 贷款风险
kind: loan
tables:
  - id: 风险等级表
    on: [ticket.created]
    hit: first
    inputs: {金额: ticket.amount, 评级: ticket.credit_rating, 地区: ticket.region}
    outputs: {等级: [高, 中, 低], 限额: number}
    result: 风险
    rows:
      - {id: 大额, 金额: ">= 10000000", 等级: 高, 限额: 0}
      - {id: 优质, 评级: ">= A", 地区: "not in [海外]", 等级: 低, 限额: 5000000.5}
      - {id: 区间, 金额: "[1000..5000)", 评级: "BB, BBB", 等级: 中, 限额: 1000000}
      - {id: 其他, 金额: "!= 7", 等级: 中, 限额: 1}
    default: {then: []}
  - id: 标签
    on: [ticket.created]
    hit: collect
    inputs: {金额: ticket.amount}
    outputs: {标签: string}
    rows:
      - {金额: "> 100", 标签: 大于百}
      - {金额: "> 1000", 标签: 大于千}
    default: {then: []}
"""


def load(root: Path, text: str = RULESET) -> Any:
    if not (root / "kinds").exists():
        (root / "kinds").mkdir(parents=True)
        shutil.copy(ROOT / "rulesets" / "kinds" / "loan.yaml", root / "kinds" / "loan.yaml")
    (root / "r.yaml").write_text(text, encoding="utf-8")
    loaded, errors = load_folder([root])
    assert errors == []
    return loaded


def ours(loaded: Any, ruleset: str, fact: str, ticket: dict[str, Any]) -> Any:
    book = RuleBook(loaded)
    event = event_from_json(
        {
            "event_id": "e",
            "type": "ticket.created",
            "occurred_at": "2026-11-02T09:00:00+08:00",
            "ticket": {"kind": loaded.rulesets[ruleset].kind, "id": "L", **ticket},
        }
    )
    run = book.compiled[ruleset].evaluate(event, base_scope(event))
    found = run.facts.get(fact)
    return None if found is None else {k: v for k, v in found.items() if k != "_t"}


TICKETS = [
    {"amount": 20000000, "credit_rating": "AAA"},
    {"amount": 3000, "credit_rating": "AA", "region": "上海"},
    {"amount": 3000, "credit_rating": "AA", "region": "海外"},
    {"amount": 3000, "credit_rating": "BB"},
    {"amount": 7, "credit_rating": "C"},
    {"amount": 8, "credit_rating": "C"},
]


@pytest.mark.parametrize("table", ["风险等级表", "标签"])
def test_round_trip_and_zen_agrees(tmp_path: Path, table: str) -> None:
    loaded = load(tmp_path / "a")
    jdm = export_jdm(loaded.rulesets["贷款风险"], loaded.kinds, table)
    decision = zen.ZenEngine().create_decision(jdm)
    result_fact = loaded.rulesets["贷款风险"].tables[0 if table == "风险等级表" else 1].result
    for ticket in TICKETS:
        expected = ours(loaded, "贷款风险", result_fact, ticket)
        got = decision.evaluate({k: (float(v) if isinstance(v, int) else v) for k, v in ticket.items()})[
            "result"
        ]
        if table == "标签":
            listed = [item[result_fact]["标签"] for item in got]
            assert listed == (expected["标签"] if expected else [])
        else:
            assert (got.get(result_fact) if got else None) == (
                None
                if expected is None
                else {k: float(v) if isinstance(v, Decimal) else v for k, v in expected.items()}
            )
    model = import_jdm("m.json", jdm, "贷款风险")
    again = tmp_path / "b"
    (again / "kinds").mkdir(parents=True)
    (again / "kinds" / f"{model.kind}.yaml").write_text(model.kind_yaml, encoding="utf-8")
    reloaded = load(again, model.ruleset_yaml)
    assert export_jdm(reloaded.rulesets[model.ruleset], reloaded.kinds, table) == jdm


def test_what_jdm_cannot_express_is_refused(tmp_path: Path) -> None:
    loaded = load(tmp_path, RULESET.replace("hit: first", "hit: priority"))
    with pytest.raises(InvalidRulesetError) as caught:
        export_jdm(loaded.rulesets["贷款风险"], loaded.kinds, "风险等级表")
    assert "first 和 collect" in caught.value.errors[0].message


def test_zen_expressions_are_refused_where_they_stand() -> None:
    graph = {
        "nodes": [
            {
                "id": "t",
                "type": "decisionTableNode",
                "name": "x",
                "content": {
                    "hitPolicy": "first",
                    "inputs": [{"id": "i", "name": "a", "field": "a"}],
                    "outputs": [{"id": "o", "name": "o", "field": "o"}],
                    "rules": [{"_id": "r", "i": "> max(1, b)", "o": "1"}],
                },
            },
            {"id": "f", "type": "functionNode", "name": "js"},
        ],
        "edges": [],
    }
    text = json.dumps(graph, ensure_ascii=False, indent=2)
    with pytest.raises(InvalidRulesetError) as caught:
        import_jdm("m.json", text, "m")
    messages = [e.message for e in caught.value.errors]
    assert any("max" in m for m in messages) and any("functionNode" in m for m in messages)
    cell = next(e for e in caught.value.errors if "max" in e.message)
    line = text.splitlines()[cell.location.line - 1]
    assert line[cell.location.col - 1 :].startswith("max")
