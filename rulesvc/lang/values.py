"""Values of the condition language: exact decimals, Asia/Shanghai datetimes, durations.

One definition of how a literal or an incoming JSON value becomes a language value, shared by the type checker
(is this text a datetime?) and the engine's closures (what does `ticket.amount` hold at run time?). Every
conversion answers None ("missing") instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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
from math import isfinite
from typing import Any, Final

SHANGHAI: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
# Arithmetic never depends on the caller's thread-local decimal context: 34 significant digits (decimal128).
DECIMAL_CONTEXT: Final = Context(
    prec=34,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


_DURATION_PART: Final = re.compile(r"([0-9](?:_?[0-9])*(?:\.[0-9](?:_?[0-9])*)?)(d|h|m|s|天|小时|分钟|秒)")
UNIT_MICROS: Final = {
    "d": 86_400_000_000,
    "天": 86_400_000_000,
    "h": 3_600_000_000,
    "小时": 3_600_000_000,
    "m": 60_000_000,
    "分钟": 60_000_000,
    "s": 1_000_000,
    "秒": 1_000_000,
}


def duration_literal(text: str) -> timedelta | None:
    """`90m`, `1.5h`, `1h30m`, `2小时` → timedelta, exactly (Decimal arithmetic, microsecond resolution)."""
    total = Decimal(0)
    position = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += Decimal(match.group(1).replace("_", "")) * UNIT_MICROS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        return None
    try:
        return timedelta(microseconds=int(total.to_integral_value(ROUND_HALF_UP)))
    except OverflowError:
        return None


def as_number(value: Any) -> Decimal | None:
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


def as_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_bool(value: Any) -> bool | None:
    return value if value is True or value is False else None


def as_datetime(value: Any) -> datetime | None:
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


def as_duration(value: Any) -> timedelta | None:
    """timedelta; numbers are seconds; text like "90m" or "1h30m" is parsed."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return duration_literal(value.strip().replace(" ", ""))
    seconds = as_number(value)
    if seconds is None:
        return None
    try:
        return timedelta(microseconds=int((seconds * 1_000_000).to_integral_value(ROUND_HALF_UP)))
    except (OverflowError, ArithmeticError):
        return None


def as_any(value: Any) -> Any:
    """Untyped values: JSON numbers become exact Decimals, lists are converted item by item."""
    kind = value.__class__
    if kind is str or kind is bool or value is None:
        return value
    if kind is int or kind is float or kind is Decimal:
        return as_number(value)
    if isinstance(value, list | tuple):
        return [as_any(v) for v in value]
    return value


def as_list(value: Any) -> list[Any] | None:
    return [as_any(v) for v in value] if isinstance(value, list | tuple) else None


CONVERTERS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "string": as_text,
    "enum": as_text,
    "number": as_number,
    "bool": as_bool,
    "datetime": as_datetime,
    "duration": as_duration,
    "list": as_list,
    "any": as_any,
}
