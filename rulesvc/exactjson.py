"""JSON that keeps the digits of its numbers: the one codec for events, decision records, the feed and webhooks.

`loads` reads every number with a fraction or exponent as a `Decimal` from its own text (never via float,
so `4999.999999999999999` stays that and is not `5000.0`), integers as `int`, refuses `NaN`/`Infinity`, and
refuses an object that repeats a key (`DuplicateKeyError` names the path). `dumps` writes a `Decimal` as its
text, unchanged, and integers beyond 64 bits as well; everything else as orjson does (several times faster
than `json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson


class DuplicateKeyError(ValueError):
    """An object repeats a key; `path` is the dotted path of the repeated member (`ticket.amount`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"duplicate key {path!r}")


class NotANumberError(ValueError):
    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"{text} is not a JSON number")


class _Pairs(list[tuple[str, Any]]):
    """The members of an object that repeats a key (kept so the path can be found after parsing)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Pairs:
    result = dict(pairs)
    if len(result) != len(pairs):
        return _Pairs(pairs)
    return result


def _constant(text: str) -> Any:
    raise NotANumberError(text)


def _duplicate_path(value: Any, prefix: str) -> str | None:
    if isinstance(value, _Pairs):
        seen: set[str] = set()
        for key, _ in value:
            if key in seen:
                return f"{prefix}{key}"
            seen.add(key)
    members: Any = value if isinstance(value, _Pairs) else value.items() if isinstance(value, dict) else ()
    for key, item in members:
        found = _duplicate_path(item, f"{prefix}{key}.")
        if found:
            return found
    if isinstance(value, list) and not isinstance(value, _Pairs):
        for index, item in enumerate(value):
            found = _duplicate_path(item, f"{prefix}{index}.")
            if found:
                return found
    return None


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_constant, object_pairs_hook=_object)


def loads(data: str | bytes) -> Any:
    """Parse JSON text; raises `json.JSONDecodeError` (malformed), `DuplicateKeyError`, `NotANumberError`."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    value = _DECODER.decode(text)
    if "," in text:  # an object without a comma cannot repeat a key
        path = _has_pairs(value)
        if path is not None:
            raise DuplicateKeyError(path)
    return value


def _has_pairs(value: Any) -> str | None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Pairs):
            return _duplicate_path(value, "")
        if isinstance(item, dict):
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
    return None


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _wide_ints(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return Decimal(value)
    if isinstance(value, Mapping):
        return {k: _wide_ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wide_ints(v) for v in value]
    return value


def dumps_bytes(value: Any, *, sort_keys: bool = False, non_str_keys: bool = False) -> bytes:
    option = (orjson.OPT_SORT_KEYS if sort_keys else 0) | (orjson.OPT_NON_STR_KEYS if non_str_keys else 0)
    try:
        return orjson.dumps(value, default=_default, option=option)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
        return orjson.dumps(_wide_ints(value), default=_default, option=option)


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """JSON text; Decimals keep their digits (`Decimal("4999.990")` → `4999.990`)."""
    return dumps_bytes(value, sort_keys=sort_keys).decode("utf-8")


def dumps_indented(value: Any) -> str:
    """JSON text for people (two-space indent, as `json.dumps(..., indent=2)`); Decimals keep their digits."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2).decode("utf-8")
