"""Static types of the condition language and the type checker behind `rulesvc check`.

`check()` reports every authoring error with stable codes: unknown_field, unknown_enum_value, type_mismatch,
unknown_function, bad_call, bad_regex (syntax errors, expr_syntax, come from the parser). Misspelled names get
"did you mean" suggestions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Final

from rulesvc.errors import Location, RulesetError
from rulesvc.lang.ast import (
    FUNCTIONS,
    MEMBERSHIP_OPS,
    ORDERING_OPS,
    STRING_TESTS,
    And,
    BinOp,
    Call,
    Compare,
    Const,
    Expr,
    ListExpr,
    Neg,
    Not,
    Or,
    Path,
    Subject,
    is_null,
    is_text_literal,
)
from rulesvc.lang.printer import const_text, to_text
from rulesvc.lang.values import as_datetime


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


def _short(expr: Expr) -> str:
    text = to_text(expr)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_word(t: FieldType) -> str:
    return {"bool": "true/false（布尔）", "any": "任意值"}.get(t.kind, str(t))


class Typer:
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
            self.error("type_mismatch", node, f"不能对 {_short(node.operand)}（{_kind_word(t)}）取负")
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
            hint: str | None = f"是不是 {match[0]}？"
        elif len(node.parts) == 1:
            hint = f'要与文本 {dotted} 比较，请加引号："{dotted}"'
        else:
            known = sorted(".".join(p) for p in env.fields if p[0] == root)
            hint = ("已知字段：" + "、".join(known[:12])) if known else None
        self.error("unknown_field", node, f"未知字段 {dotted}", hint)
        return ANY

    def _want_bool(self, node: Expr, word: str) -> None:
        t = self.type_of(node)
        if t.kind not in ("bool", "any"):
            self.error(
                "type_mismatch",
                node,
                f"{word} 需要一个真/假条件，但 {_short(node)} 是 {_kind_word(t)}",
                "请写成比较，如 ticket.amount > 0",
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
                f"'{node.op}' 不能用于 {_short(node.left)}（{_kind_word(lt)}）"
                f"和 {_short(node.right)}（{_kind_word(rt)}）",
                "算术运算只用于数字、时长和时间",
            )
            return ANY
        return result

    def _call(self, node: Call) -> FieldType:
        arg_types = [self.type_of(a) for a in node.args]
        arity = FUNCTIONS.get(node.name)
        if arity is None:
            match = difflib.get_close_matches(node.name, list(FUNCTIONS), n=1, cutoff=0.5)
            available = "可用函数：" + "、".join(f"{f}()" for f in FUNCTIONS)
            self.error(
                "unknown_function",
                node,
                f"未知函数 {node.name}()",
                f"是不是 {match[0]}()？（{available}）" if match else available,
            )
            return ANY
        low, high = arity
        if not low <= len(node.args) <= high:
            wanted = str(low) if low == high else f"{low} 或 {high}"
            self.error(
                "bad_call",
                node,
                f"{node.name}() 需要 {wanted} 个参数，实际 {len(node.args)} 个",
                "round(x, n) 把 x 四舍五入到 n 位小数" if node.name == "round" else None,
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
                    f"{node.name}() 不接受 {_short(arg)}（{_kind_word(t)}）",
                    f"{node.name}() 的参数须是 {' 或 '.join(k for k in kinds if k != 'any')}",
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
        if is_null(left) or is_null(right):
            if ordering:
                self.error("type_mismatch", at, f"'{op}' 不能与 null 比较", "请用 == null 或 != null")
            return
        for a, at_, b in ((left, lt, right), (right, rt, left)):
            if at_.kind == "enum" and is_text_literal(b):
                self._enum_member(at_, a, b)
                return
            if at_.kind == "datetime" and is_text_literal(b):
                if as_datetime(b.value) is None:  # type: ignore[attr-defined]
                    self.error(
                        "type_mismatch",
                        b,
                        f"{_short(b)} 不是日期/时间（与时间字段 {_short(a)} 比较）",
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
                hint = f'if you mean the text, quote it: "{const_text(literal.value)}"'
            elif literal is not None and isinstance(literal.value, str):
                try:
                    Decimal(literal.value.replace(",", "").replace("_", ""))
                    hint = f"去掉引号：{literal.value}"
                except InvalidOperation:
                    hint = None
            if "duration" in (lt.kind, rt.kind) and "number" in (lt.kind, rt.kind):
                hint = "时长要带单位，如 90m、2h、1d"
            self.error(
                "type_mismatch",
                where,
                f"不能比较 {_short(left)}（{_kind_word(lt)}）和 {_short(right)}（{_kind_word(rt)}）",
                hint,
            )
            return
        if ordering and (lt.kind not in _ORDERED_KINDS or rt.kind not in _ORDERED_KINDS):
            plain = left if lt.kind not in _ORDERED_KINDS else right
            plain_type = lt if plain is left else rt
            hint = None
            if plain_type.kind == "string":
                hint = "文本没有大小顺序；请在工单类型中把该字段声明为有序枚举（从低到高）"
            self.error(
                "type_mismatch",
                at,
                f"'{op}' 需要有顺序的值，但 {_short(plain)} 是 {_kind_word(plain_type)}",
                hint,
            )

    def _enum_member(self, t: FieldType, subject: Expr, literal: Expr) -> None:
        assert isinstance(literal, Const) and isinstance(literal.value, str)
        members = self.env.enums.get(t.enum or "")
        if members is None or literal.value in members:
            return
        order = " < ".join(members)
        match = difflib.get_close_matches(literal.value, list(members), n=1, cutoff=0.5)
        hint = f'是不是 "{match[0]}"？（{t.enum}：{order}）' if match else f"{t.enum}：{order}"
        self.error(
            "unknown_enum_value",
            literal,
            f'"{literal.value}" 不是 {t.enum}（{_short(subject)}）的取值',
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
                f"'{node.op}' 需要一个列表，但 {_short(right)} 是 {_kind_word(rt)}",
                '列表写成 ["a", "b"]；在文本中查找子串请用 contains',
            )

    def _string_test(self, node: Compare, lt: FieldType, rt: FieldType) -> None:
        list_ok = node.op == "contains" and lt.kind == "list"
        if lt.kind not in (*_TEXT_KINDS, "any") and not list_ok:
            self.error(
                "type_mismatch",
                node,
                f"'{node.op}' 需要文本，但 {_short(node.left)} 是 {_kind_word(lt)}",
                "数字请用 == / <，列表请用 in" if lt.kind != "list" else "列表只能用 contains",
            )
        if rt.kind not in (*_TEXT_KINDS, "any") and not list_ok:
            self.error("type_mismatch", node.right, f"'{node.op}' 右边需要文本，实际是 {_short(node.right)}")
        if node.op == "matches" and is_text_literal(node.right):
            try:
                re.compile(node.right.value)  # type: ignore[attr-defined]
            except (re.error, ValueError, ArithmeticError, RecursionError) as exc:
                self.error("bad_regex", node.right, f"正则表达式无效：{exc}")


def check(expr: Expr, env: TypeEnv, location: Location, *, condition: bool = False) -> list[RulesetError]:
    """All authoring errors of a parsed expression, positioned via `location.shifted(node.line - 1, node.col)`.

    With `condition=True` the whole expression must also be true/false (use it for `when:`; table inputs and
    action expressions are values, so the default does not require it)."""
    typer = Typer(env, location)
    result = typer.type_of(expr)
    if condition and result.kind not in ("bool", "any"):
        typer.error(
            "type_mismatch",
            expr,
            f"条件必须为真或假，但 {_short(expr)} 是 {_kind_word(result)}",
            "请写成比较，如 ticket.amount > 0",
        )
    unique = list(dict.fromkeys(typer.errors))  # a subject bound twice (an interval) reports once
    return sorted(unique, key=RulesetError.sort_key)


def infer_type(expr: Expr, env: TypeEnv) -> FieldType:
    """The static type of an expression (any where unknown or wrong); no errors reported."""
    return Typer(env, None).type_of(expr)


def is_fact(expr: Expr, env: TypeEnv) -> bool:
    return (
        isinstance(expr, Path)
        and len(expr.parts) == 1
        and expr.parts[0] in env.facts
        and expr.parts not in env.fields
    )
