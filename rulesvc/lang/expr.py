"""The condition language: parser (lark, never eval), AST, type checker, closure compiler, explanations.

Syntax (grammar in expr.lark, precedence loosest first: or < and < not < comparison < + - < * / % < unary -)::

    ticket.amount < 5000 and ticket.region == "上海浦东"
    ticket.applicant_rank >= "部门经理" and not 大额贷款
    ticket.kind in ["loan", "expense"] and event.occurred_at - ticket.created_at > 1.5h
    lower(ticket.email) endswith "@bank.cn" or len(ticket.tags) == 0

Literals: numbers (`5000`, `4999.99`, `1_000_000` → Decimal, never float), strings ("..." or '...', escapes
\\n \\t \\r \\\\ \\" \\' \\uXXXX; any other backslash is kept, so regexes like "\\d+" need no doubling),
`true` / `false` / `null`, durations (`30s`, `90m`, `1.5h`, `1d`, `1h30m`, `2小时` → timedelta), lists.
Names are Unicode (`大额贷款.金额`); keywords (and or not in contains startswith endswith matches true false
null) are reserved. A bare one-segment name declared as a derived fact is true iff the fact exists.
Comparisons are non-associative (`a < b < c` is a syntax error). Functions: len lower upper abs round.

Decision-table cells (`parse_cell`) are unary tests on an implicit subject bound later (`bind_subject`):
`-` or empty (always true), `上海浦东` / `A` / `5000` (equality; bare words are strings), `< 5000`, `!= x`,
`in [a, b]`, `not in [a, b]`, `contains x`, `[1000..5000)` / `(0..1000]` (intervals), `>= 1000 and < 5000`,
and `,` for "either": `上海浦东, 北京海淀`.

Evaluation (`compile_expr`), deliberately simple and never raising on data:

* Numbers are Decimal. Incoming int/float/numeric-string values on number fields are converted exactly
  (`Decimal(repr(float))`), so 4999.99 < 5000 and 0.1 + 0.2 == 0.3 hold. NaN/inf/bools are not numbers.
* Two-valued logic with "missing is false": every atomic test (comparison, in, contains, ...) whose operand
  is missing (absent root, absent field, null, wrong runtime type, failed arithmetic such as division by
  zero) is **False** — including `!=` and `not in`. `and` / `or` / `not` are then ordinary boolean logic,
  so `not (ticket.x == 5)` is True when x is missing while `ticket.x != 5` is False.
  The one exception: `x == null` is True iff x is missing, `x != null` iff present (the existence test);
  likewise `x in [null, "a"]` is True for a missing x.
* Arithmetic on a missing value or failing (÷0, type clash) yields missing, hence the comparison is False.
* Enum-typed fields compare by rank in the enum's declared order (low → high); a runtime value that is not
  a member makes every comparison on it False.
* Strings compare by equality only; ordering plain strings is a type error (declare an ordered enum).
* Datetime fields accept aware datetimes or ISO-8601 strings; naive values (and date-only literals such as
  "2026-10-01") are taken as Asia/Shanghai (UTC+8). datetime - datetime → duration; durations compare with
  durations; duration fields also accept seconds (number) or "90m"-style text.
* Arithmetic uses a private decimal context (34 significant digits), never the caller's.
* `matches` is `re.search` (anchor with ^...$ for a full match); `round(x, n)` rounds half up (四舍五入).
* In `and`/`or`/`not`, only the value True counts as true (a missing bool field is false).

`check()` reports every authoring error with stable codes: expr_syntax (parse only), unknown_field,
unknown_enum_value, type_mismatch, unknown_function, bad_call, bad_regex.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from functools import cache
from math import isfinite
from pathlib import Path as FilePath
from typing import Any, ClassVar, Final, TypeAlias

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from rulesvc.errors import InvalidRulesetError, Location, RulesetError
from rulesvc.model import ConditionTrace

__all__ = [
    "And",
    "BinOp",
    "Call",
    "Compare",
    "Const",
    "Expr",
    "ExpressionError",
    "FieldType",
    "ListExpr",
    "Neg",
    "Not",
    "Or",
    "Path",
    "Scope",
    "Subject",
    "TypeEnv",
    "bind_subject",
    "check",
    "compile_expr",
    "explain",
    "infer_type",
    "parse_cell",
    "parse_expression",
    "paths",
    "to_text",
    "walk",
]

Scope: TypeAlias = Mapping[str, Mapping[str, Any] | None]
Evaluator: TypeAlias = Callable[[Scope], Any]

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
SHANGHAI: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
# Arithmetic never depends on the caller's thread-local decimal context: 34 significant digits (decimal128).
DECIMAL_CONTEXT: Final = Context(
    prec=34,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


# ----------------------------------------------------------------------------------------------- AST


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


# ------------------------------------------------------------------------------------------- parsing


@cache
def _lark() -> Lark:
    grammar = FilePath(__file__).with_name("expr.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="basic", start=["expression", "cell"], maybe_placeholders=False)


def parse_expression(text: str, location: Location) -> Expr:
    """Parse a condition or value expression; raises ExpressionError positioned at the offending character."""
    if not text.strip():
        raise _syntax_error(
            "empty expression", location, 1, 1, "write a condition, e.g. ticket.amount < 5000"
        )
    tree = _parse(text, "expression", location)
    try:
        return _Builder(location).expr(tree)
    except RecursionError:
        raise _syntax_error("expression is nested too deeply", location, 1, 1, None) from None


def parse_cell(text: str, location: Location) -> Expr:
    """Parse a decision-table cell into an expression over `Subject()`; `-` or empty → Const(True)."""
    stripped = text.strip()
    if stripped in ("", "-"):
        return Const(True, line=1, col=1)
    tree = _parse(text, "cell", location)
    return _Builder(location).cell(tree)


def _parse(text: str, start: str, location: Location) -> Tree[Token]:
    try:
        return _lark().parse(text, start=start)
    except UnexpectedInput as exc:
        raise _explain_syntax_error(text, start, exc, location) from None


def _syntax_error(message: str, location: Location, line: int, col: int, hint: str | None) -> ExpressionError:
    return ExpressionError([RulesetError("expr_syntax", message, location.shifted(line - 1, col), hint)])


_VALUE_TERMINALS: Final = frozenset(
    {"NUMBER", "DURATION", "STRING", "NAME", "TRUE", "FALSE", "NULL", "LSQB", "LPAR", "MINUS"}
)
_TEST_TERMINALS: Final = frozenset({"COMP_OP", "IN", "CONTAINS", "STARTSWITH", "ENDSWITH", "MATCHES"})
_ARITH_TERMINALS: Final = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "PERCENT"})
_OPERATOR_TERMINALS: Final = _TEST_TERMINALS | _ARITH_TERMINALS | {"AND", "OR", "NOT", "COMMA", "DOTDOT"}
_FULL_WIDTH: Final = {
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "、": ",",
    "。": ".",
    "　": " ",
    "【": "[",
    "】": "]",
}


def _describe_expected(expected: set[str]) -> str:
    words: list[str] = []
    rest = set(expected)
    if {"NUMBER", "STRING"} <= rest:
        words.append('a value (number, "text", field name, [list] or (...))')
        rest -= _VALUE_TERMINALS
    elif "NAME" in rest and rest <= {"NAME"}:
        words.append("a field name")
        rest.discard("NAME")
    if "COMP_OP" in rest:
        words.append("a comparison (== != < <= > >= in contains ...)")
        rest -= _TEST_TERMINALS | {"NOT"}
    if {"PLUS", "STAR"} <= rest:
        words.append("an arithmetic operator (+ - * / %)")
        rest -= _ARITH_TERMINALS
    named = {
        "AND": "'and'",
        "OR": "'or'",
        "NOT": "'not'",
        "IN": "'in'",
        "RPAR": "')'",
        "RSQB": "']'",
        "LPAR": "'('",
        "LSQB": "'['",
        "COMMA": "','",
        "DOT": "'.'",
        "DOTDOT": "'..'",
        "NAME": "a field name",
        "NUMBER": "a number",
        "STRING": 'a "string"',
        "DURATION": "a duration (90m, 2h, 1d)",
        "MINUS": "'-'",
        "$END": "the end of the expression",
    }
    order = list(named)
    for name in sorted(rest, key=lambda n: order.index(n) if n in order else len(order)):
        words.append(named.get(name, name.lower()))
    if not words:
        return "nothing more"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _end_position(text: str) -> tuple[int, int]:
    """Line/col just after the last non-blank character."""
    body = text.rstrip()
    line = body.count("\n") + 1
    col = len(body) - (body.rfind("\n") + 1) + 1
    return line, col


def _accepted(text: str, start: str, upto: int) -> tuple[set[str], Token | None]:
    """Terminals the parser accepts after text[:upto], and the last token before that point."""
    try:
        parser = _lark().parse_interactive(text[:upto], start=start)
        last: Token | None = None
        for token in parser.iter_parse():
            last = token
        return set(parser.accepts()), last
    except UnexpectedInput:
        return set(), None


def _explain_syntax_error(text: str, start: str, exc: UnexpectedInput, location: Location) -> ExpressionError:
    if isinstance(exc, UnexpectedCharacters):
        line, col, index = exc.line, exc.column, exc.pos_in_stream
        char = text[index] if index is not None and index < len(text) else ""
        expected, prev = _accepted(text, start, index if index is not None else len(text))
        hint = "expected " + _describe_expected(expected) if expected else None
        if char in "\"'":
            return _syntax_error(
                "unterminated string", location, line, col, f"close it with {char} on the same line"
            )
        if char == "=":
            return _syntax_error("unexpected '='", location, line, col, "use '==' to compare")
        if char in "&|":
            return _syntax_error(f"unexpected '{char}'", location, line, col, "use 'and' / 'or'")
        if char == "!":
            return _syntax_error("unexpected '!'", location, line, col, "use 'not' or '!='")
        ascii_char = _FULL_WIDTH.get(char) or (
            chr(ord(char) - 0xFEE0) if "\uff01" <= char <= "\uff5e" else None
        )
        if ascii_char:
            return _syntax_error(
                f"unexpected full-width character '{char}'",
                location,
                line,
                col,
                f"use the ASCII '{ascii_char}' instead (switch the input method to half-width)",
            )
        if prev is not None and prev.type in _OPERATOR_TERMINALS and expected & _VALUE_TERMINALS:
            return _syntax_error(f"expected a value after '{prev}'", location, line, col, hint)
        return _syntax_error(f"unexpected character '{char}'", location, line, col, hint)
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    at_end = token.type == "$END"
    if at_end:
        line, col = _end_position(text)
        upto = len(text)
    else:
        line, col = token.line or 1, token.column or 1
        upto = token.start_pos if token.start_pos is not None else len(text)
    expected, prev = _accepted(text, start, upto)
    if not expected:
        expected = set(exc.expected)
    hint = "expected " + _describe_expected(expected)
    if (
        prev is not None
        and prev.type in _OPERATOR_TERMINALS | {"LPAR", "LSQB"}
        and expected & _VALUE_TERMINALS
        and token.type not in _VALUE_TERMINALS
    ):
        if token.type in KEYWORD_TERMINALS:
            return _syntax_error(
                f"'{token}' is a reserved word, not a value", location, line, col, "quote it if you mean text"
            )
        return _syntax_error(f"expected a value after '{prev}'", location, line, col, hint)
    if prev is not None and prev.type == "DOT":
        if token.type in KEYWORD_TERMINALS:
            return _syntax_error(
                f"'{token}' is a reserved word", location, line, col, "field names cannot be keywords"
            )
        return _syntax_error("expected a field name after '.'", location, line, col, None)
    if at_end:
        if {"RPAR", "RSQB"} <= expected and "$END" not in expected:
            return _syntax_error("missing ']' or ')'", location, line, col, hint)
        if "RPAR" in expected and "$END" not in expected:
            return _syntax_error("missing ')'", location, line, col, hint)
        if "RSQB" in expected and "$END" not in expected:
            return _syntax_error("missing ']'", location, line, col, hint)
        return _syntax_error("unexpected end of expression", location, line, col, hint)
    if token.type in _TEST_TERMINALS and "COMP_OP" not in expected and prev is not None:
        hint = "comparisons cannot be chained; join them with 'and'"
    elif (
        token.type == "NAME"
        and prev is not None
        and prev.type == "NUMBER"
        and prev.end_pos == token.start_pos
    ):
        hint = "durations use the units d, h, m, s (e.g. 90m, 1.5h, 1d)"
    return _syntax_error(f"unexpected '{token}'", location, line, col, hint)


KEYWORD_TERMINALS: Final = frozenset(k.upper() for k in KEYWORDS)
_DURATION_PART: Final = re.compile(r"([0-9](?:_?[0-9])*(?:\.[0-9](?:_?[0-9])*)?)(d|h|m|s|天|小时|分钟|秒)")
_UNIT_MICROS: Final = {
    "d": 86_400_000_000,
    "天": 86_400_000_000,
    "h": 3_600_000_000,
    "小时": 3_600_000_000,
    "m": 60_000_000,
    "分钟": 60_000_000,
    "s": 1_000_000,
    "秒": 1_000_000,
}
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
_ESCAPE_RE: Final = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def _duration_literal(text: str) -> timedelta | None:
    """`90m`, `1.5h`, `1h30m`, `2小时` → timedelta, exactly (Decimal arithmetic, microsecond resolution)."""
    total = Decimal(0)
    position = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += Decimal(match.group(1).replace("_", "")) * _UNIT_MICROS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        return None
    try:
        return timedelta(microseconds=int(total.to_integral_value(ROUND_HALF_UP)))
    except OverflowError:
        return None


def _unescape(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, "\\" + code)

    return _ESCAPE_RE.sub(replace, body)


class _Builder:
    """Lark tree → AST with positions; rejects what the grammar cannot (oversized durations, empty intervals)."""

    def __init__(self, location: Location) -> None:
        self.location = location

    def fail(self, message: str, token: Token, hint: str | None = None) -> ExpressionError:
        return _syntax_error(message, self.location, token.line or 1, token.column or 1, hint)

    def expr(self, node: Tree[Token] | Token) -> Expr:
        if isinstance(node, Token):  # pragma: no cover - every atom is wrapped in a rule
            raise self.fail(f"unexpected '{node}'", node)
        kind = str(node.data)
        kids = node.children
        if kind in ("or_test", "and_test"):
            items: list[Expr] = []
            cls: type[And] | type[Or] = Or if kind == "or_test" else And
            for kid in kids:
                if isinstance(kid, Token):
                    continue
                sub = self.expr(kid)
                items.extend(sub.items if isinstance(sub, cls) else (sub,))
            return cls(tuple(items), line=items[0].line, col=items[0].col)
        if kind == "not_":
            op = _tok(kids[0])
            return Not(self.expr(kids[1]), line=op.line or 1, col=op.column or 1)
        if kind == "compare":
            left, right = self.expr(kids[0]), self.expr(kids[-1])
            ops = kids[1:-1]
            if len(ops) == 2:  # NOT IN
                first = _tok(ops[0])
                return Compare("not in", left, right, line=first.line or 1, col=first.column or 1)
            op_node = ops[0]
            first = _tok(op_node.children[0]) if isinstance(op_node, Tree) else op_node
            return Compare(str(first), left, right, line=first.line or 1, col=first.column or 1)
        if kind == "binop":
            op = _tok(kids[1])
            return BinOp(
                str(op), self.expr(kids[0]), self.expr(kids[2]), line=op.line or 1, col=op.column or 1
            )
        if kind == "neg":
            op = _tok(kids[0])
            return Neg(self.expr(kids[1]), line=op.line or 1, col=op.column or 1)
        if kind == "group":
            return self.expr(kids[1])
        if kind == "literal":
            return self.literal(_tok(kids[0]))
        if kind == "path":
            names = [_tok(k) for k in kids if isinstance(k, Token) and k.type == "NAME"]
            first = names[0]
            return Path(tuple(str(n) for n in names), line=first.line or 1, col=first.column or 1)
        if kind == "call":
            name = _tok(kids[0])
            return Call(str(name), self.args(kids), line=name.line or 1, col=name.column or 1)
        if kind == "list":
            bracket = _tok(kids[0])
            return ListExpr(self.args(kids), line=bracket.line or 1, col=bracket.column or 1)
        raise AssertionError(f"unknown tree {kind}")  # pragma: no cover

    def args(self, kids: list[Tree[Token] | Token]) -> tuple[Expr, ...]:
        for kid in kids:
            if isinstance(kid, Tree) and kid.data == "args":
                return tuple(self.expr(a) for a in kid.children if isinstance(a, Tree))
        return ()

    def literal(self, token: Token) -> Const:
        text = str(token)
        line, col = token.line or 1, token.column or 1
        if token.type == "NUMBER":
            return Const(Decimal(text.replace("_", "")), line=line, col=col)
        if token.type == "DURATION":
            value = _duration_literal(text)
            if value is None:
                raise self.fail(f"duration {text} is too large", token)
            return Const(value, line=line, col=col)
        if token.type == "STRING":
            return Const(_unescape(text[1:-1]), line=line, col=col)
        if token.type == "TRUE":
            return Const(True, line=line, col=col)
        if token.type == "FALSE":
            return Const(False, line=line, col=col)
        return Const(None, line=line, col=col)

    # cells ------------------------------------------------------------------------------------------

    def cell(self, tree: Tree[Token]) -> Expr:
        alternatives: list[Expr] = []
        for conj in tree.children:
            if not isinstance(conj, Tree):
                continue
            tests: list[Expr] = []
            for test in conj.children:
                if isinstance(test, Tree):
                    sub = self.cell_test(test)
                    tests.extend(sub.items if isinstance(sub, And) else (sub,))
            alternatives.append(
                tests[0] if len(tests) == 1 else And(tuple(tests), line=tests[0].line, col=tests[0].col)
            )
        flat: list[Expr] = []
        for alt in alternatives:
            flat.extend(alt.items if isinstance(alt, Or) else (alt,))
        return flat[0] if len(flat) == 1 else Or(tuple(flat), line=flat[0].line, col=flat[0].col)

    def cell_test(self, test: Tree[Token]) -> Expr:
        kind = str(test.data)
        kids = test.children
        first = _first_token(test)
        subject = Subject(line=first.line or 1, col=first.column or 1)
        at = {"line": first.line or 1, "col": first.column or 1}
        if kind == "cell_eq":
            return Compare("==", subject, self.cell_value(kids[0]), **at)
        if kind == "cell_cmp":
            op_node = kids[0]
            op = _tok(op_node.children[0]) if isinstance(op_node, Tree) else _tok(op_node)
            return Compare(str(op), subject, self.cell_value(kids[1]), **at)
        if kind == "cell_in":
            negated = len(kids) == 3
            items = tuple(self.cell_value(v) for v in kids[-1].children if isinstance(v, Tree))  # type: ignore[union-attr]
            return Compare("not in" if negated else "in", subject, ListExpr(items, **at), **at)
        if kind == "cell_interval":
            opening, low_node, _, high_node, closing = kids
            low_op = ">=" if _tok(opening).type == "LSQB" else ">"
            high_op = "<=" if _tok(closing).type == "RSQB" else "<"
            close_tok = _tok(closing)
            low, high = self.cell_value(low_node), self.cell_value(high_node)
            (_, low_value), (_, high_value) = _literal(low), _literal(high)
            comparable = (isinstance(low_value, Decimal) and isinstance(high_value, Decimal)) or (
                isinstance(low_value, timedelta) and isinstance(high_value, timedelta)
            )
            if comparable and (
                low_value > high_value or (low_value == high_value and (low_op, high_op) != (">=", "<="))
            ):
                raise _syntax_error(
                    f"empty interval: no value lies between {to_text(low)} and {to_text(high)}",
                    self.location,
                    at["line"],
                    at["col"],
                    "write the lower bound first, e.g. [1000..5000)",
                )
            return And(
                (
                    Compare(low_op, subject, low, **at),
                    Compare(high_op, subject, high, line=close_tok.line or 1, col=close_tok.column or 1),
                ),
                **at,
            )
        raise AssertionError(f"unknown cell tree {kind}")  # pragma: no cover

    def cell_value(self, node: Tree[Token] | Token) -> Expr:
        assert isinstance(node, Tree)
        kind = str(node.data)
        if kind == "cell_value":
            return self.cell_value(node.children[0])
        if kind == "literal":
            return self.literal(_tok(node.children[0]))
        if kind == "cell_negative":  # folded: a cell `-5` is the constant -5 (table analysis needs constants)
            minus = _tok(node.children[0])
            value = self.literal(_tok(node.children[1])).value
            assert isinstance(value, Decimal | timedelta)
            return Const(-value, line=minus.line or 1, col=minus.column or 1)
        word = _tok(node.children[0])  # cell_word: a bare word is a string
        return Const(str(word), line=word.line or 1, col=word.column or 1)


def _tok(node: Tree[Token] | Token) -> Token:
    assert isinstance(node, Token)
    return node


def _first_token(tree: Tree[Token]) -> Token:
    for kid in tree.children:
        if isinstance(kid, Token):
            return kid
        return _first_token(kid)
    raise AssertionError("empty tree")  # pragma: no cover


# ------------------------------------------------------------------------------- walking and printing


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
        return _const_text(expr.value)
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


def _const_text(value: object) -> str:
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
        size = _UNIT_MICROS[unit]
        if micros and micros % size == 0:
            return f"{sign}{micros // size}{unit}"
    return f"{sign}{format(Decimal(micros) / Decimal(1_000_000), 'f')}s"


# ------------------------------------------------------------------------------------------- types


@dataclass(frozen=True)
class FieldType:
    """A static type: kind is string, number, bool, datetime, duration, enum (with `enum` name), list or any."""

    kind: str
    enum: str | None = None

    KINDS: ClassVar[tuple[str, ...]] = (
        "string",
        "number",
        "bool",
        "datetime",
        "duration",
        "enum",
        "list",
        "any",
    )

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown field type {self.kind!r}")
        if (self.kind == "enum") != (self.enum is not None):
            raise ValueError("an enum FieldType needs the enum name, and only enums carry one")

    def __str__(self) -> str:
        return f"enum {self.enum}" if self.kind == "enum" else self.kind


STRING: Final = FieldType("string")
NUMBER: Final = FieldType("number")
BOOL: Final = FieldType("bool")
DATETIME: Final = FieldType("datetime")
DURATION: Final = FieldType("duration")
LIST: Final = FieldType("list")
ANY: Final = FieldType("any")


@dataclass(frozen=True)
class TypeEnv:
    """What expressions of one ruleset may reference."""

    fields: Mapping[tuple[str, ...], FieldType]  # ("ticket", "amount") -> number
    enums: Mapping[str, tuple[str, ...]]  # ordered low → high
    open_roots: frozenset[str] = frozenset()  # roots whose undeclared fields are allowed (type any)
    facts: frozenset[str] = frozenset()  # derived-fact names usable as bare booleans


_TEXT_KINDS: Final = ("string", "enum")
_ORDERED_KINDS: Final = ("number", "duration", "datetime", "enum")
_ARITH_TYPES: Final[Mapping[tuple[str, str, str], FieldType]] = {
    ("+", "number", "number"): NUMBER,
    ("+", "duration", "duration"): DURATION,
    ("+", "datetime", "duration"): DATETIME,
    ("+", "duration", "datetime"): DATETIME,
    ("-", "number", "number"): NUMBER,
    ("-", "duration", "duration"): DURATION,
    ("-", "datetime", "duration"): DATETIME,
    ("-", "datetime", "datetime"): DURATION,
    ("*", "number", "number"): NUMBER,
    ("*", "duration", "number"): DURATION,
    ("*", "number", "duration"): DURATION,
    ("/", "number", "number"): NUMBER,
    ("/", "duration", "number"): DURATION,
    ("/", "duration", "duration"): NUMBER,
    ("%", "number", "number"): NUMBER,
}


def _is_text_literal(expr: Expr) -> bool:
    return isinstance(expr, Const) and isinstance(expr.value, str)


def _is_null(expr: Expr) -> bool:
    return isinstance(expr, Const) and expr.value is None


def _short(expr: Expr) -> str:
    text = to_text(expr)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_word(t: FieldType) -> str:
    return {"bool": "true/false", "any": "value"}.get(t.kind, str(t))


class _Typer:
    """Static types of nodes (memoised per node object); records errors when given a location."""

    def __init__(self, env: TypeEnv, location: Location | None) -> None:
        self.env = env
        self.location = location
        self.errors: list[RulesetError] = []
        self.memo: dict[int, FieldType] = {}
        self.keep: list[Expr] = []  # keeps memo ids valid

    def error(self, code: str, node: Expr, message: str, hint: str | None = None) -> None:
        if self.location is None:
            return
        where = self.location.shifted(node.line - 1, node.col) if node.line else self.location
        self.errors.append(RulesetError(code, message, where, hint))

    def type_of(self, node: Expr) -> FieldType:
        found = self.memo.get(id(node))
        if found is None:
            found = self._infer(node)
            self.memo[id(node)] = found
            self.keep.append(node)
        return found

    def _infer(self, node: Expr) -> FieldType:
        if isinstance(node, Const):
            return self._const(node.value)
        if isinstance(node, Path):
            return self._path(node)
        if isinstance(node, Subject):
            return ANY
        if isinstance(node, ListExpr):
            for item in node.items:
                self.type_of(item)
            return LIST
        if isinstance(node, Not):
            self._want_bool(node.operand, "'not'")
            return BOOL
        if isinstance(node, And | Or):
            word = "'and'" if isinstance(node, And) else "'or'"
            for item in node.items:
                self._want_bool(item, word)
            return BOOL
        if isinstance(node, Neg):
            t = self.type_of(node.operand)
            if t.kind in ("number", "duration", "any"):
                return t
            self.error("type_mismatch", node, f"cannot negate {_short(node.operand)} ({_kind_word(t)})")
            return ANY
        if isinstance(node, BinOp):
            return self._binop(node)
        if isinstance(node, Compare):
            self._compare(node)
            return BOOL
        if isinstance(node, Call):
            return self._call(node)
        raise TypeError(f"not an expression: {node!r}")

    @staticmethod
    def _const(value: object) -> FieldType:
        if value is None:
            return ANY
        if isinstance(value, bool):
            return BOOL
        if isinstance(value, Decimal):
            return NUMBER
        if isinstance(value, str):
            return STRING
        if isinstance(value, timedelta):
            return DURATION
        return ANY

    def _path(self, node: Path) -> FieldType:
        env = self.env
        declared = env.fields.get(node.parts)
        if declared is not None:
            return declared
        root = node.parts[0]
        if len(node.parts) == 1 and root in env.facts:
            return BOOL
        if root in env.open_roots:
            return ANY
        dotted = node.dotted
        candidates = [".".join(p) for p in env.fields] + sorted(env.facts)
        match = difflib.get_close_matches(dotted, candidates, n=1, cutoff=0.6)
        if match:
            hint: str | None = f"did you mean {match[0]}?"
        elif len(node.parts) == 1:
            hint = f'to compare with the text {dotted}, quote it: "{dotted}"'
        else:
            known = sorted(".".join(p) for p in env.fields if p[0] == root)
            hint = ("known fields: " + ", ".join(known[:12])) if known else None
        self.error("unknown_field", node, f"unknown field {dotted}", hint)
        return ANY

    def _want_bool(self, node: Expr, word: str) -> None:
        t = self.type_of(node)
        if t.kind not in ("bool", "any"):
            self.error(
                "type_mismatch",
                node,
                f"{word} needs a true/false condition, but {_short(node)} is a {_kind_word(t)}",
                "compare it, e.g. ticket.amount > 0",
            )

    def _binop(self, node: BinOp) -> FieldType:
        lt, rt = self.type_of(node.left), self.type_of(node.right)
        if lt.kind == "any" or rt.kind == "any":
            return ANY
        result = _ARITH_TYPES.get((node.op, lt.kind, rt.kind))
        if result is None:
            self.error(
                "type_mismatch",
                node,
                f"cannot apply '{node.op}' to {_short(node.left)} ({_kind_word(lt)}) "
                f"and {_short(node.right)} ({_kind_word(rt)})",
                "arithmetic works on numbers, durations and datetimes",
            )
            return ANY
        return result

    def _call(self, node: Call) -> FieldType:
        arg_types = [self.type_of(a) for a in node.args]
        arity = FUNCTIONS.get(node.name)
        if arity is None:
            match = difflib.get_close_matches(node.name, list(FUNCTIONS), n=1, cutoff=0.5)
            available = "functions: " + ", ".join(f"{f}()" for f in FUNCTIONS)
            self.error(
                "unknown_function",
                node,
                f"unknown function {node.name}()",
                f"did you mean {match[0]}()? ({available})" if match else available,
            )
            return ANY
        low, high = arity
        if not low <= len(node.args) <= high:
            wanted = str(low) if low == high else f"{low} or {high}"
            self.error(
                "bad_call",
                node,
                f"{node.name}() takes {wanted} argument{'s' if high > 1 else ''}, got {len(node.args)}",
                "round(x, n) rounds x to n decimal places" if node.name == "round" else None,
            )
            return ANY
        allowed = {
            "len": ("string", "enum", "list", "any"),
            "lower": ("string", "enum", "any"),
            "upper": ("string", "enum", "any"),
            "abs": ("number", "duration", "any"),
            "round": ("number", "any"),
        }[node.name]
        for arg, t in zip(node.args, arg_types, strict=True):
            kinds = allowed if arg is node.args[0] else ("number", "any")
            if t.kind not in kinds:
                self.error(
                    "type_mismatch",
                    arg,
                    f"{node.name}() does not accept {_short(arg)} ({_kind_word(t)})",
                    f"{node.name}() takes {' or '.join(k for k in kinds if k != 'any')}",
                )
        if node.name == "len" or node.name == "round":
            return NUMBER
        if node.name in ("lower", "upper"):
            return STRING
        return arg_types[0] if arg_types[0].kind != "any" else ANY

    # comparisons -------------------------------------------------------------------------------------

    def _compare(self, node: Compare) -> None:
        lt, rt = self.type_of(node.left), self.type_of(node.right)
        if node.op in MEMBERSHIP_OPS:
            self._membership(node, lt, rt)
        elif node.op in STRING_TESTS:
            self._string_test(node, lt, rt)
        else:
            self._comparable(node, node.left, lt, node.right, rt, node.op in ORDERING_OPS, node)

    def _comparable(
        self, node: Compare, left: Expr, lt: FieldType, right: Expr, rt: FieldType, ordering: bool, at: Expr
    ) -> None:
        op = node.op if ordering else "=="
        if _is_null(left) or _is_null(right):
            if ordering:
                self.error("type_mismatch", at, f"'{op}' cannot compare with null", "use == null or != null")
            return
        for a, at_, b in ((left, lt, right), (right, rt, left)):
            if at_.kind == "enum" and _is_text_literal(b):
                self._enum_member(at_, a, b)
                return
            if at_.kind == "datetime" and _is_text_literal(b):
                if _to_datetime(b.value) is None:  # type: ignore[attr-defined]
                    self.error(
                        "type_mismatch",
                        b,
                        f"{_short(b)} is not a date/time (compared with datetime {_short(a)})",
                        'use ISO 8601, e.g. "2026-10-01T09:00:00+08:00" or "2026-10-01"',
                    )
                return
        if lt.kind == "any" or rt.kind == "any":
            return
        same = lt.kind == rt.kind or (lt.kind in _TEXT_KINDS and rt.kind in _TEXT_KINDS)
        if lt.kind == "enum" and rt.kind == "enum" and lt.enum != rt.enum:
            same = False
        if not same:
            literal = right if isinstance(right, Const) else left if isinstance(left, Const) else None
            where = literal if literal is not None else at
            hint = None
            if literal is not None and isinstance(literal.value, Decimal):
                hint = f'if you mean the text, quote it: "{_const_text(literal.value)}"'
            elif literal is not None and isinstance(literal.value, str):
                try:
                    Decimal(literal.value.replace(",", "").replace("_", ""))
                    hint = f"remove the quotes: {literal.value}"
                except InvalidOperation:
                    hint = None
            if "duration" in (lt.kind, rt.kind) and "number" in (lt.kind, rt.kind):
                hint = "write a duration with a unit, e.g. 90m, 2h, 1d"
            self.error(
                "type_mismatch",
                where,
                f"cannot compare {_short(left)} ({_kind_word(lt)}) with {_short(right)} ({_kind_word(rt)})",
                hint,
            )
            return
        if ordering and (lt.kind not in _ORDERED_KINDS or rt.kind not in _ORDERED_KINDS):
            plain = left if lt.kind not in _ORDERED_KINDS else right
            plain_type = lt if plain is left else rt
            hint = None
            if plain_type.kind == "string":
                hint = "strings have no order; declare the field as an ordered enum (low → high) in the kind"
            self.error(
                "type_mismatch",
                at,
                f"'{op}' needs ordered values, but {_short(plain)} is a {_kind_word(plain_type)}",
                hint,
            )

    def _enum_member(self, t: FieldType, subject: Expr, literal: Expr) -> None:
        assert isinstance(literal, Const) and isinstance(literal.value, str)
        members = self.env.enums.get(t.enum or "")
        if members is None or literal.value in members:
            return
        order = " < ".join(members)
        match = difflib.get_close_matches(literal.value, list(members), n=1, cutoff=0.5)
        hint = f'did you mean "{match[0]}"? ({t.enum}: {order})' if match else f"{t.enum}: {order}"
        self.error(
            "unknown_enum_value",
            literal,
            f'"{literal.value}" is not a value of {t.enum} ({_short(subject)})',
            hint,
        )

    def _membership(self, node: Compare, lt: FieldType, rt: FieldType) -> None:
        right = node.right
        if isinstance(right, ListExpr):
            for item in right.items:
                self._comparable(node, node.left, lt, item, self.type_of(item), False, item)
            return
        if rt.kind not in ("list", "any"):
            self.error(
                "type_mismatch",
                right,
                f"'{node.op}' needs a list, but {_short(right)} is a {_kind_word(rt)}",
                'write a list like ["a", "b"]; to look for text inside a string use \'contains\'',
            )

    def _string_test(self, node: Compare, lt: FieldType, rt: FieldType) -> None:
        list_ok = node.op == "contains" and lt.kind == "list"
        if lt.kind not in (*_TEXT_KINDS, "any") and not list_ok:
            self.error(
                "type_mismatch",
                node,
                f"'{node.op}' needs text, but {_short(node.left)} is a {_kind_word(lt)}",
                "use == / < for numbers, 'in' for lists"
                if lt.kind != "list"
                else "only 'contains' works on lists",
            )
        if rt.kind not in (*_TEXT_KINDS, "any") and not list_ok:
            self.error(
                "type_mismatch", node.right, f"'{node.op}' needs text on its right, got {_short(node.right)}"
            )
        if node.op == "matches" and _is_text_literal(node.right):
            try:
                re.compile(node.right.value)  # type: ignore[attr-defined,arg-type]
            except (re.error, ValueError, ArithmeticError, RecursionError) as exc:
                self.error("bad_regex", node.right, f"invalid regular expression: {exc}")


def check(expr: Expr, env: TypeEnv, location: Location, *, condition: bool = False) -> list[RulesetError]:
    """All authoring errors of a parsed expression, positioned via `location.shifted(node.line - 1, node.col)`.

    With `condition=True` the whole expression must also be true/false (use it for `when:`; table inputs and
    action expressions are values, so the default does not require it)."""
    typer = _Typer(env, location)
    result = typer.type_of(expr)
    if condition and result.kind not in ("bool", "any"):
        typer.error(
            "type_mismatch",
            expr,
            f"a condition must be true or false, but {_short(expr)} is a {_kind_word(result)}",
            "compare it, e.g. ticket.amount > 0",
        )
    unique = list(dict.fromkeys(typer.errors))  # a subject bound twice (an interval) reports once
    return sorted(unique, key=RulesetError.sort_key)


def infer_type(expr: Expr, env: TypeEnv) -> FieldType:
    """The static type of an expression (any where unknown or wrong); no errors reported."""
    return _Typer(env, None).type_of(expr)


# ---------------------------------------------------------------------------------- runtime values


def _to_number(value: Any) -> Decimal | None:
    """Exact conversion to Decimal; anything that is not a finite number (bool, NaN, text) is missing."""
    kind = value.__class__
    if kind is Decimal:
        return value if value.is_finite() else None
    if kind is int:
        return Decimal(value)
    if kind is float:
        return Decimal(repr(value)) if isfinite(value) else None
    if kind is str:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(int(value))
    return None


def _to_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _to_bool(value: Any) -> bool | None:
    return value if value is True or value is False else None


def _to_datetime(value: Any) -> datetime | None:
    """Aware datetime; naive values and dates are taken as Asia/Shanghai; ISO-8601 strings are parsed."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=SHANGHAI)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=SHANGHAI)
    return None


def _to_duration(value: Any) -> timedelta | None:
    """timedelta; numbers are seconds; text like "90m" or "1h30m" is parsed."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return _duration_literal(value.strip().replace(" ", ""))
    seconds = _to_number(value)
    if seconds is None:
        return None
    try:
        return timedelta(microseconds=int((seconds * 1_000_000).to_integral_value(ROUND_HALF_UP)))
    except (OverflowError, ArithmeticError):
        return None


def _to_any(value: Any) -> Any:
    """Untyped values: JSON numbers become exact Decimals, lists are converted item by item."""
    kind = value.__class__
    if kind is str or kind is bool or value is None:
        return value
    if kind is int or kind is float or kind is Decimal:
        return _to_number(value)
    if isinstance(value, list | tuple):
        return [_to_any(v) for v in value]
    return value


def _to_list(value: Any) -> list[Any] | None:
    return [_to_any(v) for v in value] if isinstance(value, list | tuple) else None


_CONVERTERS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "string": _to_text,
    "enum": _to_text,
    "number": _to_number,
    "bool": _to_bool,
    "datetime": _to_datetime,
    "duration": _to_duration,
    "list": _to_list,
    "any": _to_any,
}


def _literal(expr: Expr) -> tuple[bool, Any]:
    """(True, value) for a literal or a negated number/duration literal (`-5` in a cell), else (False, None)."""
    if isinstance(expr, Const):
        return True, expr.value
    if isinstance(expr, Neg) and isinstance(expr.operand, Const):
        value = expr.operand.value
        if isinstance(value, Decimal | timedelta):
            return True, -value
    return False, None


def _coerce_const(value: Any, target: FieldType) -> Any:
    """A literal as seen by a comparison with a value of type `target` (ISO text → datetime)."""
    if target.kind == "datetime" and isinstance(value, str):
        return _to_datetime(value)
    return value


def _false(scope: Scope) -> bool:
    return False


def _true(scope: Scope) -> bool:
    return True


# Guarded operators for untyped operands: never raise, bools never equal numbers, text has no order.
def _g_eq(a: Any, b: Any) -> bool:
    if (a.__class__ is bool) is not (b.__class__ is bool):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError, ArithmeticError):
        return False


def _g_ordered(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if a.__class__ is bool or b.__class__ is bool or isinstance(a, str) or isinstance(b, str):
            return False
        try:
            return bool(op(a, b))
        except (TypeError, ValueError, ArithmeticError):
            return False

    return compare


_GUARDED: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "==": _g_eq,
    "!=": lambda a, b: not _g_eq(a, b),
    "<": _g_ordered(operator.lt),
    "<=": _g_ordered(operator.le),
    ">": _g_ordered(operator.gt),
    ">=": _g_ordered(operator.ge),
}
_ARITH_RESULTS: Final = (Decimal, timedelta, datetime)
_ONE_MICRO: Final = timedelta(microseconds=1)


def _micros(value: timedelta) -> Decimal:
    return Decimal(value // _ONE_MICRO)


def _from_micros(value: Decimal) -> timedelta:
    return timedelta(microseconds=int(value.to_integral_value(ROUND_HALF_UP)))


def _mul(a: Any, b: Any) -> Any:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return DECIMAL_CONTEXT.multiply(a, b)
    if isinstance(a, timedelta) and isinstance(b, Decimal):
        return _from_micros(DECIMAL_CONTEXT.multiply(_micros(a), b))
    if isinstance(a, Decimal) and isinstance(b, timedelta):
        return _from_micros(DECIMAL_CONTEXT.multiply(a, _micros(b)))
    return None


def _div(a: Any, b: Any) -> Any:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return DECIMAL_CONTEXT.divide(a, b)
    if isinstance(a, timedelta) and isinstance(b, Decimal):
        return _from_micros(DECIMAL_CONTEXT.divide(_micros(a), b))
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return DECIMAL_CONTEXT.divide(_micros(a), _micros(b))
    return None


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return DECIMAL_CONTEXT.add(a, b)
    return None if isinstance(a, Decimal) or isinstance(b, Decimal) else a + b


def _sub(a: Any, b: Any) -> Any:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return DECIMAL_CONTEXT.subtract(a, b)
    return None if isinstance(a, Decimal) or isinstance(b, Decimal) else a - b


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return DECIMAL_CONTEXT.remainder(a, b)  # sign of the dividend, like Decimal's %
    return None


_ARITH_FUNCS: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
}


def _arith(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    func = _ARITH_FUNCS[op]

    def evaluate(scope: Scope) -> Any:
        a = left(scope)
        if a is None or a.__class__ is bool:
            return None
        b = right(scope)
        if b is None or b.__class__ is bool:
            return None
        try:
            result = func(a, b)
        except (TypeError, ValueError, ArithmeticError):
            return None
        return result if isinstance(result, _ARITH_RESULTS) else None

    return evaluate


def _fn_len(value: Any) -> Decimal | None:
    return Decimal(len(value)) if isinstance(value, str | list | tuple | Mapping) else None


def _fn_lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _fn_upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) else None


def _fn_abs(value: Any) -> Any:
    return abs(value) if isinstance(value, Decimal | timedelta) else None


def _fn_round(value: Any, places: Any = Decimal(0)) -> Decimal | None:
    if (
        not isinstance(value, Decimal)
        or not isinstance(places, Decimal)
        or places != places.to_integral_value()
    ):
        return None
    try:
        return value.quantize(
            Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP, context=DECIMAL_CONTEXT
        )
    except (ArithmeticError, ValueError):
        return None


_FUNCTION_IMPLS: Final[Mapping[str, Callable[..., Any]]] = {
    "len": _fn_len,
    "lower": _fn_lower,
    "upper": _fn_upper,
    "abs": _fn_abs,
    "round": _fn_round,
}


def _path_getter(parts: tuple[str, ...], convert: Callable[[Any], Any]) -> Evaluator:
    root = parts[0]
    if len(parts) == 1:

        def get1(scope: Scope) -> Any:
            value = scope.get(root)
            return None if value is None else convert(value)

        return get1
    if len(parts) == 2:
        key = parts[1]

        def get2(scope: Scope) -> Any:
            record = scope.get(root)
            if record is None:
                return None
            try:
                value = record.get(key)
            except AttributeError:
                return None
            return None if value is None else convert(value)

        return get2
    rest = parts[1:]

    def get_n(scope: Scope) -> Any:
        value: Any = scope.get(root)
        for key in rest:
            if value is None:
                return None
            try:
                value = value.get(key)
            except AttributeError:
                return None
        return None if value is None else convert(value)

    return get_n


def _strict_bool(expr: Expr, env: TypeEnv) -> bool:
    """Does the compiled node always return a real bool (never None or another value)?"""
    if isinstance(expr, Compare | And | Or | Not):
        return True
    if isinstance(expr, Const):
        return isinstance(expr.value, bool)
    return _is_fact(expr, env)


def _is_fact(expr: Expr, env: TypeEnv) -> bool:
    return (
        isinstance(expr, Path)
        and len(expr.parts) == 1
        and expr.parts[0] in env.facts
        and expr.parts not in env.fields
    )


class _Compiler:
    def __init__(self, env: TypeEnv) -> None:
        self.env = env
        self.typer = _Typer(env, None)
        self.ranks = {name: {m: i for i, m in enumerate(members)} for name, members in env.enums.items()}

    def type_of(self, expr: Expr) -> FieldType:
        return self.typer.type_of(expr)

    def truth(self, expr: Expr) -> Evaluator:
        """Compile a node in a boolean position: only True counts."""
        fn = self.compile(expr)
        if _strict_bool(expr, self.env):
            return fn
        return lambda scope: fn(scope) is True

    def compile(self, expr: Expr) -> Evaluator:
        if isinstance(expr, Const):
            value = expr.value
            return lambda scope: value
        if isinstance(expr, Path):
            if _is_fact(expr, self.env):
                name = expr.parts[0]
                return lambda scope: scope.get(name) is not None
            return _path_getter(expr.parts, _CONVERTERS[self.type_of(expr).kind])
        if isinstance(expr, Subject):
            return lambda scope: None
        if isinstance(expr, ListExpr):
            if all(isinstance(i, Const) for i in expr.items):
                items = [i.value for i in expr.items]  # type: ignore[attr-defined]
                return lambda scope: list(items)
            fns = [self.compile(i) for i in expr.items]
            return lambda scope: [f(scope) for f in fns]
        if isinstance(expr, Not):
            inner = self.truth(expr.operand)
            return lambda scope: not inner(scope)
        if isinstance(expr, And | Or):
            return self._junction(expr)
        if isinstance(expr, Neg):
            inner = self.compile(expr.operand)

            def negate(scope: Scope) -> Any:
                value = inner(scope)
                if not isinstance(value, Decimal | timedelta):
                    return None
                try:
                    return DECIMAL_CONTEXT.minus(value) if isinstance(value, Decimal) else -value
                except (ArithmeticError, ValueError):  # -timedelta.min overflows
                    return None

            return negate
        if isinstance(expr, BinOp):
            return _arith(expr.op, self.compile(expr.left), self.compile(expr.right))
        if isinstance(expr, Call):
            return self._call(expr)
        if isinstance(expr, Compare):
            if expr.op in MEMBERSHIP_OPS:
                return self._membership(expr)
            if expr.op in STRING_TESTS:
                return self._string_test(expr)
            return self._comparison(expr)
        raise TypeError(f"not an expression: {expr!r}")

    def _junction(self, expr: And | Or) -> Evaluator:
        fns = tuple(self.truth(i) for i in expr.items)
        if isinstance(expr, And):
            if len(fns) == 2:
                a, b = fns
                return lambda scope: a(scope) and b(scope)

            def all_of(scope: Scope) -> bool:
                for fn in fns:  # noqa: SIM110 - a plain loop is faster than all(<genexpr>)
                    if not fn(scope):
                        return False
                return True

            return all_of
        if len(fns) == 2:
            a, b = fns
            return lambda scope: a(scope) or b(scope)

        def any_of(scope: Scope) -> bool:
            for fn in fns:  # noqa: SIM110 - a plain loop is faster than any(<genexpr>)
                if fn(scope):
                    return True
            return False

        return any_of

    def _call(self, expr: Call) -> Evaluator:
        impl = _FUNCTION_IMPLS.get(expr.name)
        low, high = FUNCTIONS.get(expr.name, (0, -1))
        if impl is None or not low <= len(expr.args) <= high:
            return lambda scope: None
        fns = [self.compile(a) for a in expr.args]
        if len(fns) == 1:
            (arg,) = fns

            def call1(scope: Scope) -> Any:
                value = arg(scope)
                if value is None:
                    return None
                try:
                    return impl(value)
                except (TypeError, ValueError, ArithmeticError):
                    return None

            return call1

        def call_n(scope: Scope) -> Any:
            values = [f(scope) for f in fns]
            if any(v is None for v in values):
                return None
            try:
                return impl(*values)
            except (TypeError, ValueError, ArithmeticError):
                return None

        return call_n

    # comparisons -------------------------------------------------------------------------------------

    def _enum_of(self, left: Expr, right: Expr) -> str | None:
        """The enum whose ranks order this comparison, if it is an enum comparison."""
        lt, rt = self.type_of(left), self.type_of(right)
        for a, b, bt in ((lt, right, rt), (rt, left, lt)):
            if (
                a.kind == "enum"
                and a.enum in self.ranks
                and (_is_text_literal(b) or (bt.kind == "enum" and bt.enum == a.enum))
            ):
                return a.enum
        return None

    def _ranked(self, expr: Expr, ranks: Mapping[str, int]) -> tuple[Evaluator | None, Any]:
        """(evaluator, None) or (None, constant rank) for one side of an enum comparison."""
        if isinstance(expr, Const):
            return None, ranks.get(expr.value) if isinstance(expr.value, str) else None
        if isinstance(expr, Path):
            return _path_getter(expr.parts, lambda v: ranks.get(v) if isinstance(v, str) else None), None
        inner = self.compile(expr)
        return (lambda scope: ranks.get(v) if isinstance(v := inner(scope), str) else None), None

    def _side(self, expr: Expr, other: FieldType) -> tuple[Evaluator | None, Any]:
        is_literal, value = _literal(expr)
        if is_literal:
            return None, _coerce_const(value, other)
        return self.compile(expr), None

    def _comparison(self, expr: Compare) -> Evaluator:
        op, left, right = expr.op, expr.left, expr.right
        if _is_null(left) or _is_null(right):
            other = self.compile(right if _is_null(left) else left)
            if op == "==":
                return lambda scope: other(scope) is None
            if op == "!=":
                return lambda scope: other(scope) is not None
            return _false
        enum = self._enum_of(left, right)
        lt, rt = self.type_of(left), self.type_of(right)
        if enum is not None:
            ranks = self.ranks[enum]
            lf, lc = self._ranked(left, ranks)
            rf, rc = self._ranked(right, ranks)
            safe = True
        else:
            lf, lc = self._side(left, rt)
            rf, rc = self._side(right, lt)
            safe = lt.kind == rt.kind and lt.kind in ("number", "duration", "datetime", "string", "enum")
            if safe and lt.kind in ("string", "enum") and op in ORDERING_OPS:
                safe = False  # text has no order: the guarded operator answers False
        if lf is None and rf is None:
            result = lc is not None and rc is not None and _GUARDED[op](lc, rc)
            return _true if result else _false
        dynamic = left
        if lf is None:  # constant on the left: mirror the operator
            lf, rf, rc, dynamic = rf, None, lc, right
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        assert lf is not None
        if rf is None:
            if rc is None:
                return _false
            if safe and isinstance(dynamic, Path) and len(dynamic.parts) == 2:
                # the hot case `ticket.amount < 5000`: one closure instead of three
                kind = "enum" if enum is not None else self.type_of(dynamic).kind
                if kind == "enum":
                    ranks = self.ranks[enum or ""]
                    return _fused_path_const(dynamic.parts, ranks.get, op, rc)
                return _fused_path_const(dynamic.parts, _CONVERTERS[kind], op, rc)
            return _compare_const(op, lf, rc, safe)
        return _compare_dynamic(op, lf, rf, safe)

    def _membership(self, expr: Compare) -> Evaluator:
        negated = expr.op == "not in"
        left, right = expr.left, expr.right
        lt = self.type_of(left)
        members: Mapping[str, int] | None = None
        if lt.kind == "enum" and lt.enum in self.ranks:
            members = self.ranks[lt.enum]
        get = self.compile(left)
        literals = [_literal(i) for i in right.items] if isinstance(right, ListExpr) else []
        if isinstance(right, ListExpr) and all(is_literal for is_literal, _ in literals):
            values = [_coerce_const(value, lt) for _, value in literals]
            has_null = any(v is None for v in values)
            consts = tuple(v for v in values if v is not None)
            typed = lt.kind in ("number", "string", "enum", "duration", "datetime")
            try:
                pool: frozenset[Any] | tuple[Any, ...] = frozenset(consts) if typed else consts
            except TypeError:
                pool, typed = consts, False

            def contains(value: Any) -> bool:
                if typed:
                    try:
                        return value in pool
                    except TypeError:
                        return False
                return any(_g_eq(value, c) for c in pool)

            if not negated:

                def in_consts(scope: Scope) -> bool:
                    value = get(scope)
                    if value is None:
                        return has_null
                    return contains(value)

                return in_consts

            def not_in_consts(scope: Scope) -> bool:
                value = get(scope)
                if value is None or (members is not None and value not in members):
                    return False
                return not contains(value)

            return not_in_consts
        items = self.compile(right)

        def in_items(scope: Scope) -> bool:
            value = get(scope)
            if value is None or (members is not None and value not in members):
                return False
            pool = items(scope)
            if not isinstance(pool, list | tuple | set | frozenset):
                return False
            found = any(_g_eq(value, v) for v in pool if v is not None)
            return not found if negated else found

        return in_items

    def _string_test(self, expr: Compare) -> Evaluator:
        op = expr.op
        get = self.compile(expr.left)
        if op == "matches":
            if _is_text_literal(expr.right):
                try:
                    pattern = re.compile(expr.right.value)  # type: ignore[attr-defined,arg-type]
                except (re.error, ValueError, ArithmeticError, RecursionError):
                    return _false
                return lambda scope: isinstance(v := get(scope), str) and pattern.search(v) is not None
            pattern_of = self.compile(expr.right)

            def matches(scope: Scope) -> bool:
                value, text = get(scope), pattern_of(scope)
                if not isinstance(value, str) or not isinstance(text, str):
                    return False
                try:
                    return re.search(text, value) is not None
                except (re.error, ValueError, ArithmeticError, RecursionError):
                    return False

            return matches
        needle_of = self.compile(expr.right)
        if op == "startswith":
            return lambda scope: (
                isinstance(v := get(scope), str)
                and isinstance(n := needle_of(scope), str)
                and v.startswith(n)
            )
        if op == "endswith":
            return lambda scope: (
                isinstance(v := get(scope), str) and isinstance(n := needle_of(scope), str) and v.endswith(n)
            )

        def contains(scope: Scope) -> bool:
            value = get(scope)
            if value is None:
                return False
            needle = needle_of(scope)
            if needle is None:
                return False
            if isinstance(value, str):
                return isinstance(needle, str) and needle in value
            if isinstance(value, list | tuple):
                return any(_g_eq(needle, v) for v in value)
            return False

        return contains


def _compare_const(op: str, get: Evaluator, const: Any, safe: bool) -> Evaluator:
    """`get(scope) <op> const`, False when the value is missing. Specialised per operator for speed."""
    if not safe:
        guarded = _GUARDED[op]
        return lambda scope: (v := get(scope)) is not None and guarded(v, const)
    if op == "==":
        return lambda scope: get(scope) == const
    if op == "!=":
        return lambda scope: (v := get(scope)) is not None and v != const
    if op == "<":
        return lambda scope: (v := get(scope)) is not None and v < const
    if op == "<=":
        return lambda scope: (v := get(scope)) is not None and v <= const
    if op == ">":
        return lambda scope: (v := get(scope)) is not None and v > const
    return lambda scope: (v := get(scope)) is not None and v >= const


_SAFE_OPS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _fused_path_const(
    parts: tuple[str, ...], convert: Callable[[Any], Any], op: str, const: Any
) -> Evaluator:
    """`root.key <op> const` in a single closure; only for operands whose types make `op` safe."""
    root, key = parts
    compare = _SAFE_OPS[op]
    if convert is _to_number and isinstance(const, Decimal):
        # Floats (JSON numbers) are compared without building a Decimal: rounding is monotonic, so for a float
        # v != float(const), Decimal(repr(v)) and const are ordered exactly like v and float(const). Only when
        # v == float(const) does the decimal text decide (const itself when const is that float's repr).
        float_const = float(const)
        const_is_repr = isfinite(float_const) and Decimal(repr(float_const)) == const
        on_tie = compare(const, const)

        def number(scope: Scope) -> bool:
            record = scope.get(root)
            if record is None:
                return False
            try:
                value: Any = record.get(key)
            except AttributeError:
                return False
            kind = value.__class__
            if kind is float:
                if not isfinite(value):
                    return False
                if value != float_const:
                    return compare(value, float_const)
                if const_is_repr:
                    return on_tie
                value = Decimal(repr(value))
            elif kind is int:  # int and Decimal compare exactly
                return compare(value, const)
            elif kind is not Decimal or not value.is_finite():
                value = _to_number(value)
                if value is None:
                    return False
            return compare(value, const)

        return number
    if convert is _to_text:

        def text(scope: Scope) -> bool:
            record = scope.get(root)
            if record is None:
                return False
            try:
                value = record.get(key)
            except AttributeError:
                return False
            return isinstance(value, str) and compare(value, const)

        return text

    def other(scope: Scope) -> bool:
        record = scope.get(root)
        if record is None:
            return False
        try:
            value = record.get(key)
        except (AttributeError, TypeError):
            return False
        if value is None:
            return False
        value = convert(value)
        return value is not None and compare(value, const)

    return other


def _compare_dynamic(op: str, left: Evaluator, right: Evaluator, safe: bool) -> Evaluator:
    func: Callable[[Any, Any], bool] = _GUARDED[op]
    if safe:
        func = {
            "==": operator.eq,
            "!=": operator.ne,
            "<": operator.lt,
            "<=": operator.le,
            ">": operator.gt,
            ">=": operator.ge,
        }[op]

    def evaluate(scope: Scope) -> bool:
        a = left(scope)
        if a is None:
            return False
        b = right(scope)
        if b is None:
            return False
        return bool(func(a, b))

    return evaluate


def compile_expr(expr: Expr, env: TypeEnv) -> Evaluator:
    """Compile to a closure tree `scope -> value` (no AST walk per call). Never raises on data; an unchecked
    expression with errors still compiles (unknown things evaluate as missing). Boolean expressions return a
    real bool."""
    compiler = _Compiler(env)
    if compiler.type_of(expr).kind == "bool":
        return compiler.truth(expr)
    return compiler.compile(expr)


def _atoms(expr: Expr) -> Iterator[Expr]:
    """Atomic conditions in boolean positions, left to right."""
    if isinstance(expr, And | Or):
        for item in expr.items:
            yield from _atoms(item)
    elif isinstance(expr, Not):
        yield from _atoms(expr.operand)
    elif not (isinstance(expr, Const) and isinstance(expr.value, bool)):
        yield expr


def explain(expr: Expr, env: TypeEnv, scope: Scope) -> list[ConditionTrace]:
    """One ConditionTrace per distinct atomic condition (comparison, in, string test, bare fact), with the
    values of the paths it reads (as the evaluator sees them: Decimal, aware datetime, ...) and its result."""
    compiler = _Compiler(env)
    traces: list[ConditionTrace] = []
    seen: set[str] = set()
    for atom in _atoms(expr):
        text = to_text(atom)
        if text in seen:
            continue
        seen.add(text)
        values: dict[str, Any] = {}
        if _is_fact(atom, env):
            values[text] = scope.get(text) is not None
        else:
            for node in walk(atom):
                if isinstance(node, Path) and node.dotted not in values:
                    values[node.dotted] = compiler.compile(node)(scope)
        result = compiler.truth(atom)(scope) is True
        traces.append(ConditionTrace(text=text, values=values, result=result))
    return traces
