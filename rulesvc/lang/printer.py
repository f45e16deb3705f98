"""Canonical text of an expression: parses back to an equal AST; used in traces, diffs and error messages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Final

from rulesvc.lang.ast import And, BinOp, Call, Compare, Const, Expr, ListExpr, Neg, Not, Or, Path, Subject
from rulesvc.lang.values import UNIT_MICROS

_PRECEDENCE: Final = {Or: 1, And: 2, Not: 3, Compare: 4, Neg: 7}
_BINOP_PRECEDENCE: Final = {"+": 5, "-": 5, "*": 6, "/": 6, "%": 6}


def _precedence(expr: Expr) -> int:
    if isinstance(expr, BinOp):
        return _BINOP_PRECEDENCE[expr.op]
    return _PRECEDENCE.get(type(expr), 8)


def _wrap(expr: Expr, parens: bool) -> str:
    text = to_text(expr)
    return f"({text})" if parens else text


def to_text(expr: Expr) -> str:
    """Canonical text: parses back to an equal AST; used in traces, diffs and error messages."""
    if isinstance(expr, Const):
        return const_text(expr.value)
    if isinstance(expr, Path):
        return expr.dotted
    if isinstance(expr, Subject):
        return "?"
    if isinstance(expr, ListExpr):
        return "[" + ", ".join(to_text(i) for i in expr.items) + "]"
    if isinstance(expr, Call):
        return f"{expr.name}(" + ", ".join(to_text(a) for a in expr.args) + ")"
    if isinstance(expr, Or | And):
        own = _precedence(expr)
        word = " or " if isinstance(expr, Or) else " and "
        return word.join(_wrap(i, _precedence(i) <= own) for i in expr.items)
    if isinstance(expr, Not):
        return "not " + _wrap(expr.operand, _precedence(expr.operand) < 3)
    if isinstance(expr, Compare):
        return f"{_wrap(expr.left, _precedence(expr.left) < 5)} {expr.op} {_wrap(expr.right, _precedence(expr.right) < 5)}"
    if isinstance(expr, BinOp):
        own = _precedence(expr)
        left = _wrap(expr.left, _precedence(expr.left) < own)
        right = _wrap(expr.right, _precedence(expr.right) <= own)
        return f"{left} {expr.op} {right}"
    if isinstance(expr, Neg):
        return "-" + _wrap(expr.operand, _precedence(expr.operand) < 7)
    raise TypeError(f"not an expression: {expr!r}")


def const_text(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        return f'"{escaped}"'
    if isinstance(value, timedelta):
        return _duration_text(value)
    raise TypeError(f"not a literal: {value!r}")


def _duration_text(value: timedelta) -> str:
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    for unit in ("d", "h", "m"):
        size = UNIT_MICROS[unit]
        if micros and micros % size == 0:
            return f"{sign}{micros // size}{unit}"
    return f"{sign}{format(Decimal(micros) / Decimal(1_000_000), 'f')}s"
