"""The DMN importer: S-FEEL input entries translated exactly, decisions chained through facts, and every
construct outside the subset refused where it stands (the TCK models are run by tests/dmn_tck)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cli.dmn import evaluate, write_folder
from rulesvc.errors import InvalidRulesetError
from rulesvc.lang.dmn import FeelError, import_dmn, literal_value, unary_tests_to_cell
from rulesvc.lang.loader import load_folder

CHAINED = Path(__file__).parent / "dmn" / "chained.dmn"


@pytest.mark.parametrize(
    ("feel", "cell"),
    [
        ("-", "-"),
        ("", "-"),
        ("<18", "< 18"),
        (">= -5.5", ">= -5.5"),
        ("= 3", "3"),
        ('"Medium","Low"', '"Medium", "Low"'),
        ("[1..5]", "[1..5]"),
        ("(1..5)", "(1..5)"),
        ("]1..5[", "(1..5)"),
        ("[1..5)", "[1..5)"),
        ("true", "true"),
        ("null", "null"),
        ('date("2026-01-01")', '"2026-01-01"'),
        ('< date("2026-01-01")', '< "2026-01-01"'),
        ('not("a", "b")', '!= "a" and != "b"'),
        ("not(< 5)", ">= 5"),
        ("not([1..5])", "< 1, > 5"),
        ("not((1..5))", "<= 1, >= 5"),
    ],
)
def test_sfeel_unary_tests(feel: str, cell: str) -> None:
    assert unary_tests_to_cell(feel) == cell


@pytest.mark.parametrize(
    ("feel", "offset", "words"),
    [
        ("count(x) > 1", 0, "函数调用 count"),
        ("Age + 1", 0, "名称"),
        ("< 5 + 1", 4, "算术"),
        ("not([1..2], 5)", 0, "区间"),
        ('date("01/02/2026")', 5, "YYYY-MM-DD"),
    ],
)
def test_outside_sfeel_is_an_error_at_the_construct(feel: str, offset: int, words: str) -> None:
    with pytest.raises(FeelError) as caught:
        unary_tests_to_cell(feel)
    assert caught.value.offset == offset and words in str(caught.value)


def test_output_entries_are_literals() -> None:
    assert literal_value('"总行"') == "总行"
    assert literal_value("98.83") == "98.83"
    assert literal_value("false") is False
    assert literal_value("null") is None
    with pytest.raises(FeelError):
        literal_value("Amount * 2")


def test_chained_decisions_import_check_and_evaluate(tmp_path: Path) -> None:
    text = CHAINED.read_text(encoding="utf-8")
    write_folder(str(CHAINED), text, tmp_path)
    _folder, errors = load_folder([tmp_path])
    assert errors == []

    def run(decision: str, **inputs: object) -> object:
        return evaluate(str(CHAINED), text, decision, {k.replace("_", " "): v for k, v in inputs.items()})

    assert run("风险等级", Amount=5000000) == "高"
    assert run("审批岗位", Amount=5000000) == "总行"
    assert run("风险等级", Amount=50, Applied_On="2026-03-01", Region="广州") == "中"
    assert run("风险等级", Amount=50, Applied_On="2026-03-01", Region="上海") == "低"
    assert run("风险等级", Amount=5, Applied_On="2025-03-01") is None
    assert run("审批岗位", Amount=5, Applied_On="2025-03-01") is None  # 风险等级 null: neither row matches
    assert run("审批岗位", Amount=50) == "分行"


def test_unsupported_constructs_are_positioned(tmp_path: Path) -> None:
    text = CHAINED.read_text(encoding="utf-8").replace("not([0..10])", "count(Amount)")
    with pytest.raises(InvalidRulesetError) as caught:
        import_dmn("m.dmn", text)
    (error,) = caught.value.errors
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "count(Amount)" in row)
    col = text.splitlines()[line - 1].index("count(Amount)") + 1
    assert (error.location.file, error.location.line, error.location.col) == ("m.dmn", line, col)
    assert "count" in error.message


def test_a_unique_violation_at_run_time(tmp_path: Path) -> None:
    text = CHAINED.read_text(encoding="utf-8").replace('not("高")', '"高", "中"')
    from rulesvc.errors import RuleRuntimeError

    with pytest.raises(RuleRuntimeError) as caught:
        evaluate("m.dmn", text, "审批岗位", {"Amount": Decimal(5000000)})
    assert caught.value.code == "rule.unique_conflict"


def test_doctype_is_refused() -> None:
    with pytest.raises(InvalidRulesetError) as caught:
        import_dmn("m.dmn", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><definitions/>')
    assert caught.value.errors[0].code == "dmn.doctype"


def test_allowed_values_of_input_data_become_an_enum_of_the_kind() -> None:
    text = """<definitions xmlns="https://www.omg.org/spec/DMN/20230324/MODEL/" name="m" id="m">
  <itemDefinition name="tStatus"><typeRef>string</typeRef>
    <allowedValues><text>"UNEMPLOYED", "EMPLOYED", "SELF-EMPLOYED"</text></allowedValues></itemDefinition>
  <inputData id="i" name="Status"><variable name="Status" typeRef="tStatus"/></inputData>
  <decision id="d" name="Code"><variable name="Code" typeRef="number"/>
    <decisionTable><input><inputExpression typeRef="string"><text>Status</text></inputExpression></input>
      <output id="o"/>
      <rule><inputEntry><text>"EMPLOYED"</text></inputEntry><outputEntry><text>1</text></outputEntry></rule>
    </decisionTable></decision>
</definitions>"""
    model = import_dmn("m.dmn", text)
    assert "  Status:\n  - UNEMPLOYED\n  - EMPLOYED\n  - SELF-EMPLOYED\n" in model.kind_yaml
    assert evaluate("m.dmn", text, "Code", {"Status": "EMPLOYED"}) == Decimal(1)
    from rulesvc.errors import InvalidEventError

    with pytest.raises(InvalidEventError):
        evaluate("m.dmn", text, "Code", {"Status": "RETIRED"})


def test_a_structured_input_becomes_one_field_per_component(tmp_path: Path) -> None:
    text = """<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" name="m" id="m">
  <itemDefinition name="tApplicant">
    <itemComponent name="Age"><typeRef>number</typeRef></itemComponent>
    <itemComponent name="Marital Status"><typeRef>string</typeRef>
      <allowedValues><text>"S", "M"</text></allowedValues></itemComponent>
  </itemDefinition>
  <inputData id="i" name="Applicant"><variable name="Applicant" typeRef="tApplicant"/></inputData>
  <decision id="d" name="Risk"><variable name="Risk" typeRef="string"/>
    <decisionTable hitPolicy="FIRST">
      <input><inputExpression><text>Applicant.Age</text></inputExpression></input>
      <input><inputExpression><text>Applicant.Marital Status</text></inputExpression></input>
      <output id="o"/>
      <rule><inputEntry><text>&lt; 25</text></inputEntry><inputEntry><text>"S"</text></inputEntry>
        <outputEntry><text>"high"</text></outputEntry></rule>
      <rule><inputEntry><text>-</text></inputEntry><inputEntry><text>-</text></inputEntry>
        <outputEntry><text>"low"</text></outputEntry></rule>
    </decisionTable></decision>
</definitions>"""
    write_folder("m.dmn", text, tmp_path)
    _folder, errors = load_folder([tmp_path])
    assert errors == []
    assert evaluate("m.dmn", text, "Risk", {"Applicant": {"Age": 20, "Marital Status": "S"}}) == "high"
    assert evaluate("m.dmn", text, "Risk", {"Applicant": {"Age": 20, "Marital Status": "M"}}) == "low"
