"""The condition language's syntax tree: nodes (positions ignored by equality), walking and subject binding.

The vocabulary (keywords, operators, functions) lives here too, so the parser, the type checker and the
engine's closure compiler agree on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final

from rulesvc.errors import InvalidRulesetError, RulesetError

KEYWORDS: Final = frozenset(
    {"and", "or", "not", "in", "contains", "startswith", "endswith", "matches", "true", "false", "null"}
)
COMPARISON_OPS: Final = ("==", "!=", "<", "<=", ">", ">=")
ORDERING_OPS: Final = ("<", "<=", ">", ">=")
MEMBERSHIP_OPS: Final = ("in", "not in")
STRING_TESTS: Final = ("contains", "startswith", "endswith", "matches")
ARITHMETIC_OPS: Final = ("+", "-", "*", "/", "%")
FUNCTIONS: Final[Mapping[str, tuple[int, int]]] = {  # name -> (min args, max args)
    "len": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "abs": (1, 1),
    "round": (1, 2),
}


@dataclass(frozen=True)
class Expr:
    """Base of every AST node. `line`/`col` are 1-based, relative to the expression text, and are ignored by
    equality (so a re-parsed canonical text equals the original AST)."""

    line: int = field(default=0, compare=False, kw_only=True, repr=False)
    col: int = field(default=0, compare=False, kw_only=True, repr=False)


@dataclass(frozen=True)
class Const(Expr):
    """A literal: Decimal, str, bool, None (null) or timedelta."""

    value: Decimal | str | bool | timedelta | None

    def __eq__(self, other: object) -> bool:  # True must not equal Decimal(1)
        if not isinstance(other, Const):
            return NotImplemented
        return type(self.value) is type(other.value) and self.value == other.value


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Path(Expr):
    """`ticket.amount`, `event.type`, `大额贷款` (a bare derived fact), `大额贷款.金额`."""

    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Subject(Expr):
    """The implicit subject of a decision-table cell; replaced by `bind_subject`."""


@dataclass(frozen=True)
class Call(Expr):
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Neg(Expr):
    operand: Expr


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # + - * / %
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Compare(Expr):
    """Every atomic test: == != < <= > >=, in, not in, contains, startswith, endswith, matches."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr


@dataclass(frozen=True)
class And(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or(Expr):
    items: tuple[Expr, ...]


class ExpressionError(InvalidRulesetError):
    """A syntax error in an expression or cell; carries exactly one RulesetError with code `expr_syntax`."""

    @property
    def error(self) -> RulesetError:
        return self.errors[0]


def children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, And | Or | ListExpr):
        return expr.items
    if isinstance(expr, Compare | BinOp):
        return (expr.left, expr.right)
    if isinstance(expr, Not | Neg):
        return (expr.operand,)
    if isinstance(expr, Call):
        return expr.args
    return ()


def walk(expr: Expr) -> Iterator[Expr]:
    """Pre-order, left to right."""
    yield expr
    for child in children(expr):
        yield from walk(child)


def paths(expr: Expr) -> set[tuple[str, ...]]:
    """Every field path referenced (a bare fact is a one-element path)."""
    return {node.parts for node in walk(expr) if isinstance(node, Path)}


def bind_subject(expr: Expr, subject: Expr) -> Expr:
    """Replace every `Subject()` of a parsed cell with `subject`. The subject's nodes take the position of the
    cell test they are bound into, so check() errors on the bound cell point into the cell text."""
    if isinstance(expr, Subject):
        return _reposition(subject, expr.line, expr.col)
    if isinstance(expr, And | Or):
        return type(expr)(tuple(bind_subject(i, subject) for i in expr.items), line=expr.line, col=expr.col)
    if isinstance(expr, ListExpr):
        return ListExpr(tuple(bind_subject(i, subject) for i in expr.items), line=expr.line, col=expr.col)
    if isinstance(expr, Compare):
        return Compare(
            expr.op,
            bind_subject(expr.left, subject),
            bind_subject(expr.right, subject),
            line=expr.line,
            col=expr.col,
        )
    if isinstance(expr, BinOp):
        return BinOp(
            expr.op,
            bind_subject(expr.left, subject),
            bind_subject(expr.right, subject),
            line=expr.line,
            col=expr.col,
        )
    if isinstance(expr, Not):
        return Not(bind_subject(expr.operand, subject), line=expr.line, col=expr.col)
    if isinstance(expr, Neg):
        return Neg(bind_subject(expr.operand, subject), line=expr.line, col=expr.col)
    if isinstance(expr, Call):
        return Call(
            expr.name, tuple(bind_subject(a, subject) for a in expr.args), line=expr.line, col=expr.col
        )
    return expr


def _reposition(expr: Expr, line: int, col: int) -> Expr:
    if isinstance(expr, Subject):
        return expr
    moved = bind_subject(expr, Subject())  # rebuild the tree (no Subject inside a subject expression)
    return _replace_positions(moved, line, col)


def _replace_positions(expr: Expr, line: int, col: int) -> Expr:
    if isinstance(expr, And | Or):
        return type(expr)(tuple(_replace_positions(i, line, col) for i in expr.items), line=line, col=col)
    if isinstance(expr, ListExpr):
        return ListExpr(tuple(_replace_positions(i, line, col) for i in expr.items), line=line, col=col)
    if isinstance(expr, Compare):
        return Compare(
            expr.op,
            _replace_positions(expr.left, line, col),
            _replace_positions(expr.right, line, col),
            line=line,
            col=col,
        )
    if isinstance(expr, BinOp):
        return BinOp(
            expr.op,
            _replace_positions(expr.left, line, col),
            _replace_positions(expr.right, line, col),
            line=line,
            col=col,
        )
    if isinstance(expr, Not):
        return Not(_replace_positions(expr.operand, line, col), line=line, col=col)
    if isinstance(expr, Neg):
        return Neg(_replace_positions(expr.operand, line, col), line=line, col=col)
    if isinstance(expr, Call):
        return Call(expr.name, tuple(_replace_positions(a, line, col) for a in expr.args), line=line, col=col)
    if isinstance(expr, Const):
        return Const(expr.value, line=line, col=col)
    if isinstance(expr, Path):
        return Path(expr.parts, line=line, col=col)
    return Subject(line=line, col=col)


def literal_value(expr: Expr) -> tuple[bool, Any]:
    """(True, value) for a literal or a negated number/duration literal (`-5` in a cell), else (False, None)."""
    if isinstance(expr, Const):
        return True, expr.value
    if isinstance(expr, Neg) and isinstance(expr.operand, Const):
        value = expr.operand.value
        if isinstance(value, Decimal | timedelta):
            return True, -value
    return False, None


def is_text_literal(expr: Expr) -> bool:
    return isinstance(expr, Const) and isinstance(expr.value, str)


def is_null(expr: Expr) -> bool:
    return isinstance(expr, Const) and expr.value is None
