"""The ticket-kind reference (README.md and docs/language.md) is executed: every value its field-type and
format tables accept is accepted and every value they refuse is refused with the code shown, and every row
of the missing-value table evaluates as shown."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rulesvc import exactjson
from rulesvc.engine.closures import compile_expr
from rulesvc.errors import InvalidEventError, Location
from rulesvc.formats import FORMATS
from rulesvc.lang import parse_expression
from rulesvc.lang.kinds import load_kind
from rulesvc.lang.loader import type_env
from rulesvc.lang.model import KindSchema
from rulesvc.validation import read_event

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", ROOT / "docs" / "language.md")
CODE = re.compile(r"`([^`]+)`")


def table(marker: str, path: Path = DOCS[0]) -> list[list[str]]:
    """The cells of the table following `<!-- marker: ... -->` (header and rule skipped)."""
    text = path.read_text(encoding="utf-8")
    start = text.index(f"<!-- {marker}:")
    lines = text[start:].splitlines()[1:]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_both_documents_carry_the_same_tables() -> None:
    for marker in ("field-types", "formats", "missing-values"):
        assert table(marker, DOCS[0]) == table(marker, DOCS[1]), marker


def kind_with(type_cell: str) -> KindSchema:
    type_name = CODE.findall(type_cell)[0]
    text = f"kind: doc\nenums: {{信用评级: [C, B, BB, BBB, A, AA, AAA]}}\nfields:\n  x: {type_name}\n"
    kind, errors = load_kind("doc.yaml", text)
    assert kind is not None and not errors, errors
    return kind


def problems(kind: KindSchema, value_text: str) -> list[str]:
    body = exactjson.loads(
        '{"event_id": "e", "type": "ticket.created", "occurred_at": "2026-11-02T09:00:00+08:00",'
        f' "ticket": {{"kind": "doc", "id": "D-1", "x": {value_text}}}}}'
    )
    try:
        read_event(body, {"doc": kind}, now=datetime(2026, 11, 2, tzinfo=UTC))
    except InvalidEventError as exc:
        return [p.code for p in exc.problems]
    return []


FIELD_TYPES = table("field-types")


@pytest.mark.parametrize("row", FIELD_TYPES, ids=[row[0] for row in FIELD_TYPES])
def test_field_type_table(row: list[str]) -> None:
    type_cell, accepted, refused = row
    kind = kind_with(type_cell)
    for value in CODE.findall(accepted):
        assert problems(kind, value) == [], (type_cell, value)
    value, code = CODE.findall(refused)
    assert problems(kind, value) == [code], (type_cell, value)


FORMAT_ROWS = table("formats")


@pytest.mark.parametrize("row", FORMAT_ROWS, ids=[row[0] for row in FORMAT_ROWS])
def test_format_table(row: list[str]) -> None:
    name, _, valid, refused = (CODE.findall(cell)[0] if "`" in cell else cell for cell in row)
    assert FORMATS[name](valid) is None
    assert FORMATS[name](refused) is not None
    kind = kind_with(f"`{{type: string, format: {name}}}`")
    assert problems(kind, f'"{valid}"') == []
    assert problems(kind, f'"{refused}"') == [f"validation.format.{name}"]


MISSING = table("missing-values")
LOAN = """\
kind: loan
enums: {信用评级: [C, B, BB, BBB, A, AA, AAA]}
fields:
  region: string
  amount: decimal
  credit_rating: 信用评级
"""


@pytest.mark.parametrize("row", MISSING, ids=[row[0] for row in MISSING])
def test_missing_value_table(row: list[str]) -> None:
    condition, result = CODE.findall(row[0])[0], row[1]
    kind, errors = load_kind("loan.yaml", LOAN)
    assert kind is not None and not errors
    env = type_env(kind, {"大额贷款": {"金额": "number"}})
    evaluate = compile_expr(parse_expression(condition, Location("README.md")), env)
    scopes: list[dict[str, Any]] = [
        {"ticket": {"kind": "loan", "id": "L-1"}},
        {"ticket": {"kind": "loan", "id": "L-1", "region": None, "amount": None, "credit_rating": None}},
    ]
    for scope in scopes:
        assert evaluate(scope) is (result == "true"), (condition, scope)
