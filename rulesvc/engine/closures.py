"""The condition language compiled to closures `scope -> value` (no AST walk per call), and explained.

Semantics (documented for authors in `rulesvc.lang`), deliberately simple and never raising on data:
missing values make every atomic test False (except `== null`), numbers are exact Decimals, enums compare by
their declared rank, only True counts in `and`/`or`/`not`. The closures are specialised for the hot cases
(`ticket.amount < 5000` is one closure); `compile_explanation` traces each atomic condition of a rule that
fired, with the values it read.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from math import isfinite
from typing import Any, Final

from rulesvc.engine.operators import (
    FUNCTION_IMPLS,
    GUARDED,
    Evaluator,
    Scope,
    always_false,
    always_true,
    arith,
    g_eq,
)
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
    literal_value,
    paths,
)
from rulesvc.lang.check import FieldType, TypeEnv, Typer, is_fact
from rulesvc.lang.printer import to_text
from rulesvc.lang.values import CONVERTERS, DECIMAL_CONTEXT, as_datetime, as_number, as_text
from rulesvc.model import ConditionTrace


def _coerce_const(value: Any, target: FieldType) -> Any:
    """A literal as seen by a comparison with a value of type `target` (ISO text → datetime)."""
    if target.kind == "datetime" and isinstance(value, str):
        return as_datetime(value)
    return value


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
    return is_fact(expr, env)


class _Compiler:
    def __init__(self, env: TypeEnv, strict: bool = False) -> None:
        self.env = env
        self.strict = strict
        self.typer = Typer(env, None)
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
            if is_fact(expr, self.env):
                name = expr.parts[0]
                return lambda scope: scope.get(name) is not None
            return _path_getter(expr.parts, CONVERTERS[self.type_of(expr).kind])
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
            text = to_text(expr) if self.strict else None
            return arith(expr.op, self.compile(expr.left), self.compile(expr.right), text)
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
        impl = FUNCTION_IMPLS.get(expr.name)
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
                and (is_text_literal(b) or (bt.kind == "enum" and bt.enum == a.enum))
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
        is_literal, value = literal_value(expr)
        if is_literal:
            return None, _coerce_const(value, other)
        return self.compile(expr), None

    def _comparison(self, expr: Compare) -> Evaluator:
        op, left, right = expr.op, expr.left, expr.right
        if is_null(left) or is_null(right):
            other = self.compile(right if is_null(left) else left)
            if op == "==":
                return lambda scope: other(scope) is None
            if op == "!=":
                return lambda scope: other(scope) is not None
            return always_false
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
            result = lc is not None and rc is not None and GUARDED[op](lc, rc)
            return always_true if result else always_false
        dynamic = left
        if lf is None:  # constant on the left: mirror the operator
            lf, rf, rc, dynamic = rf, None, lc, right
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        assert lf is not None
        if rf is None:
            if rc is None:
                return always_false
            if safe and isinstance(dynamic, Path) and len(dynamic.parts) == 2:
                # the hot case `ticket.amount < 5000`: one closure instead of three
                kind = "enum" if enum is not None else self.type_of(dynamic).kind
                if kind == "enum":
                    ranks = self.ranks[enum or ""]
                    return _fused_path_const(dynamic.parts, ranks.get, op, rc)
                return _fused_path_const(dynamic.parts, CONVERTERS[kind], op, rc)
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
        literals = [literal_value(i) for i in right.items] if isinstance(right, ListExpr) else []
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
                return any(g_eq(value, c) for c in pool)

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
            found = any(g_eq(value, v) for v in pool if v is not None)
            return not found if negated else found

        return in_items

    def _string_test(self, expr: Compare) -> Evaluator:
        op = expr.op
        get = self.compile(expr.left)
        if op == "matches":
            if is_text_literal(expr.right):
                try:
                    pattern = re.compile(expr.right.value)  # type: ignore[attr-defined]
                except (re.error, ValueError, ArithmeticError, RecursionError):
                    return always_false
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
                return any(g_eq(needle, v) for v in value)
            return False

        return contains


def _compare_const(op: str, get: Evaluator, const: Any, safe: bool) -> Evaluator:
    """`get(scope) <op> const`, False when the value is missing. Specialised per operator for speed."""
    if not safe:
        guarded = GUARDED[op]
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
    if convert is as_number and isinstance(const, Decimal):
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
                value = as_number(value)
                if value is None:
                    return False
            return compare(value, const)

        return number
    if convert is as_text:

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
    func: Callable[[Any, Any], bool] = GUARDED[op]
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


def compile_expr(expr: Expr, env: TypeEnv, *, strict: bool = False) -> Evaluator:
    """Compile to a closure tree `scope -> value` (no AST walk per call). Never raises on data, except that with
    `strict` (action parameters) arithmetic without a result raises `ArithmeticFault`; an unchecked expression
    with errors still compiles (unknown things evaluate as missing). Boolean expressions return a real bool."""
    compiler = _Compiler(env, strict)
    if compiler.type_of(expr).kind == "bool":
        return compiler.truth(expr)
    return compiler.compile(expr)


@dataclass(frozen=True)
class _Atom:
    """One atomic condition compiled once, so explaining a firing costs only closure calls."""

    text: str
    value_fns: tuple[tuple[str, Evaluator], ...]
    result_fn: Evaluator

    def trace(self, scope: Scope) -> ConditionTrace:
        values = {name: fn(scope) for name, fn in self.value_fns}
        return ConditionTrace(self.text, values, self.result_fn(scope) is True)


def _atoms(expr: Expr, env: TypeEnv) -> list[_Atom]:
    if isinstance(expr, And | Or):
        return [atom for item in expr.items for atom in _atoms(item, env)]
    if isinstance(expr, Not):
        return _atoms(expr.operand, env)
    value_paths = sorted(paths(expr))
    return [
        _Atom(
            to_text(expr),
            tuple((".".join(p), compile_expr(Path(p), env)) for p in value_paths if len(p) > 1),
            compile_expr(expr, env),
        )
    ]


def compile_explanation(expr: Expr | None, env: TypeEnv) -> Callable[[Scope], tuple[ConditionTrace, ...]]:
    """The trace of a condition: one ConditionTrace per atomic condition under `and`/`or`/`not`, left to right,
    with the values of the field paths it reads (as the closures see them: Decimal, aware datetime, ...) and
    its result. Compiled once per rule; each call costs only closure calls."""
    atoms = _atoms(expr, env) if expr is not None else []
    return lambda scope: tuple(atom.trace(scope) for atom in atoms)
