"""The DMN TCK's compliance-level-2 decision-table models (vendored here, see README.md): each imports into
a folder `rulesvc check` accepts, and every test case evaluates to its expected result."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cli.dmn import evaluate, write_folder
from rulesvc.errors import InvalidRulesetError
from rulesvc.lang.loader import load_folder

HERE = Path(__file__).parent
NS = {"t": "http://www.omg.org/spec/DMN/20160719/testcase"}
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
MODELS = sorted(p for p in HERE.glob("0*/*.dmn") if not p.name.startswith("0001"))


def _value(node: ET.Element) -> Any:
    """A test file's value: <value xsi:type=...>, <list><item>…</item></list> or <component>s."""
    value = node.find("t:value", NS)
    if value is not None:
        if value.get(f"{XSI}nil") == "true":
            return None
        kind = (value.get(f"{XSI}type") or "xsd:string").split(":")[-1]
        text = value.text or ""
        if kind == "decimal":
            return Decimal(text)
        if kind == "boolean":
            return text == "true"
        return text
    items = node.find("t:list", NS)
    if items is not None:
        return [_value(item) for item in items.findall("t:item", NS)]
    components = node.findall("t:component", NS)
    if components:
        return {c.get("name"): _value(c) for c in components}
    return None


def cases(model: Path) -> list[tuple[str, dict[str, Any], str, Any]]:
    root = ET.parse(model.with_name(model.stem + "-test-01.xml")).getroot()
    found = []
    for case in root.findall("t:testCase", NS):
        inputs = {node.get("name"): _value(node) for node in case.findall("t:inputNode", NS)}
        for result in case.findall("t:resultNode", NS):
            expected = result.find("t:expected", NS)
            assert expected is not None
            found.append((case.get("id", ""), inputs, str(result.get("name")), _value(expected)))
    return found


ALL_CASES = [
    pytest.param(model, inputs, decision, expected, id=f"{model.stem}-{case_id}")
    for model in MODELS
    for case_id, inputs, decision, expected in cases(model)
]


@pytest.mark.parametrize("model", MODELS, ids=[m.stem for m in MODELS])
def test_imported_folder_passes_check(model: Path, tmp_path: Path) -> None:
    write_folder(str(model), model.read_text(encoding="utf-8"), tmp_path)
    _folder, errors = load_folder([tmp_path])
    assert errors == []


@pytest.mark.parametrize(("model", "inputs", "decision", "expected"), ALL_CASES)
def test_case(model: Path, inputs: dict[str, Any], decision: str, expected: Any) -> None:
    assert evaluate(str(model), model.read_text(encoding="utf-8"), decision, inputs) == expected


def test_every_hit_policy_and_aggregation_is_covered() -> None:
    text = " ".join(m.read_text(encoding="utf-8") for m in MODELS)
    for policy in ("UNIQUE", "ANY", "PRIORITY", "FIRST", "RULE ORDER", "OUTPUT ORDER", "COLLECT"):
        assert f'hitPolicy="{policy}"' in text
    for aggregation in ("SUM", "MIN", "COUNT"):
        assert f'aggregation="{aggregation}"' in text


def test_a_literal_expression_is_refused_where_it_stands() -> None:
    model = HERE / "0001-input-data-string" / "0001-input-data-string.dmn"
    with pytest.raises(InvalidRulesetError) as caught:
        evaluate(str(model), model.read_text(encoding="utf-8"), "Greeting Message", {})
    (error,) = caught.value.errors
    assert (error.location.line, error.location.col) == (8, 9)
    assert "literal expression" in error.message
