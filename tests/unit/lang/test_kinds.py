"""Kind files are schemas; `rulesvc check` reports every problem in them, positioned."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rulesvc.lang.kinds import load_kind

GOOD = """\
kind: loan
enums:
  信用评级: [C, B, A]
fields:
  amount: {type: decimal, required: true, min_exclusive: 0, max: 100000000}
  rating: 信用评级
  rank: {type: enum, enum: 信用评级}
  count: integer
  born: {type: date, min: 1900-01-01}
  mobile: {type: string, format: cn_mobile, max_length: 11}
  code: {type: string, pattern: "^[A-Z]{2}-\\\\d+$"}
  tags: {type: list, items: string}
  legacy: number
invalid: {assign: 数据核查岗}
"""


def test_schema_fields_and_their_view_in_the_condition_language() -> None:
    kind, errors = load_kind("kinds/loan.yaml", GOOD)
    assert errors == [] and kind is not None
    amount = kind.specs["amount"]
    assert (amount.type, amount.required, amount.min_exclusive, amount.max) == (
        "decimal",
        True,
        Decimal(0),
        Decimal(100000000),
    )
    assert kind.specs["rating"].enum == "信用评级" and kind.specs["rank"].enum == "信用评级"
    assert kind.specs["born"].min == date(1900, 1, 1)
    assert kind.specs["legacy"].type == "decimal"
    assert kind.fields["amount"] == "number" and kind.fields["rating"] == "信用评级"
    assert kind.fields["born"] == "datetime" and kind.fields["tags"] == "list"
    assert kind.invalid is not None and kind.invalid.assign == "数据核查岗"


def test_every_schema_error_positioned() -> None:
    text = """\
kind: loan
enums:
  评级: [A, B]
fields:
  amount: {type: decimel, min: 0}
  rating: {type: enum, enum: 评 级}
  low: {type: decimal, min: abc, max: -1, min_exclusive: 0}
  mobile: {type: string, format: cn_phone}
  code: {type: string, pattern: "("}
  flag: {type: boolean, max_length: 3, requird: true}
invalid: {route: x}
"""
    _kind, errors = load_kind("kinds/loan.yaml", text)
    found = sorted((e.location.line, e.code) for e in errors)
    assert found == [
        (5, "unknown_type"),
        (6, "unknown_type"),
        (7, "bad_value"),
        (7, "bad_value"),
        (8, "unknown_format"),
        (9, "bad_regex"),
        (10, "bad_value"),
        (10, "unknown_key"),
        (11, "bad_value"),
    ], errors
    hints = {(e.location.line, e.code): e.hint for e in errors}
    assert hints[(5, "unknown_type")] == "是不是 'decimal'？"
    assert hints[(8, "unknown_format")] == "是不是 'cn_mobile'？"
    assert all(e.location.col > 0 for e in errors)


def test_field_class_is_read_and_checked() -> None:
    schema, errors = load_kind(
        "k.yaml", "kind: k\nfields:\n  a: {type: string, class: 个人信息}\n  b: string\n"
    )
    assert not errors and schema is not None
    assert schema.specs["a"].data_class == "个人信息" and schema.specs["b"].data_class is None
    _, errors = load_kind("k.yaml", "kind: k\nfields:\n  a: {type: string, class: 个人}\n")
    assert [e.code for e in errors] == ["bad_value"] and "个人信息" in str(errors[0].hint)
