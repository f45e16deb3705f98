"""Run-time operators of the condition language: guarded comparisons, exact arithmetic, built-in functions.

None of them raises on data in a condition: a type clash, a division by zero or an overflow answers None
(missing) or False. In an action's parameter (`amount: "= ticket.amount / ticket.n"`) a missing value still
answers None, but arithmetic that has no result raises `ArithmeticFault`: an action must not carry a value
the rule never computed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Any, Final

from rulesvc.lang.values import DECIMAL_CONTEXT

Scope = Mapping[str, Mapping[str, Any] | None]
Evaluator = Callable[[Scope], Any]


def always_false(scope: Scope) -> bool:
    return False


def always_true(scope: Scope) -> bool:
    return True


# Guarded operators for untyped operands: never raise, bools never equal numbers, text has no order.
def g_eq(a: Any, b: Any) -> bool:
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


GUARDED: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "==": g_eq,
    "!=": lambda a, b: not g_eq(a, b),
    "<": _g_ordered(operator.lt),
    "<=": _g_ordered(operator.le),
    ">": _g_ordered(operator.gt),
    ">=": _g_ordered(operator.ge),
}
_ARITH_RESULTS: Final = (Decimal, timedelta, datetime)
_ONE_MICRO: Final = timedelta(microseconds=1)
_REASONS: Final[Mapping[type, str]] = {
    DivisionByZero: "除数为 0",
    InvalidOperation: "运算无意义（如 0 / 0 或对 0 取余）",
    Overflow: "结果超出可表示的范围",
    OverflowError: "结果超出可表示的范围",
}


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


ARITH_FUNCS: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
}


class ArithmeticFault(Exception):
    """Arithmetic in an action parameter without a result (division by zero, overflow, ...)."""

    def __init__(self, text: str, left: Any, right: Any, reason: str) -> None:
        super().__init__(f"{text}: {reason}")
        self.text = text
        self.left = left
        self.right = right
        self.reason = reason


def arith(op: str, left: Evaluator, right: Evaluator, strict_text: str | None = None) -> Evaluator:
    """`left op right`; with `strict_text` (the expression's text) a failed operation raises ArithmeticFault."""
    func = ARITH_FUNCS[op]

    def evaluate(scope: Scope) -> Any:
        a = left(scope)
        if a is None or a.__class__ is bool:
            return None
        b = right(scope)
        if b is None or b.__class__ is bool:
            return None
        try:
            result = func(a, b)
        except (TypeError, ValueError, ArithmeticError) as exc:
            if strict_text is not None and isinstance(exc, ArithmeticError):
                raise ArithmeticFault(strict_text, a, b, _REASONS.get(type(exc), "无法计算")) from exc
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


FUNCTION_IMPLS: Final[Mapping[str, Callable[..., Any]]] = {
    "len": _fn_len,
    "lower": _fn_lower,
    "upper": _fn_upper,
    "abs": _fn_abs,
    "round": _fn_round,
}
