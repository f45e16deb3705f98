"""JSON that keeps the digits of its numbers: the one codec for events, decision records, the feed and webhooks.

`loads` reads every number with a fraction or exponent as a `Decimal` from its own text (never via float,
so `4999.999999999999999` stays that and is not `5000.0`), integers as `int`, refuses `NaN`/`Infinity`, and
refuses an object that repeats a key (`DuplicateKeyError` names the path). `dumps` writes a `Decimal` as its
text, unchanged, and integers beyond 64 bits as well; everything else as orjson does (several times faster
than `json`).
"""

from __future__ import annotations

import json
import re
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


_EXACT = json.JSONDecoder(parse_float=Decimal, parse_constant=_constant)
_QUOTE_COLON = re.compile(r'"\s*:')


def _key_count(text: str) -> int:
    """Object keys in JSON text: quotes followed by a colon, not escaped (inside a JSON string a quote is
    escaped, and a value's closing quote is never followed by a colon)."""
    if "\\" not in text:
        return len(_QUOTE_COLON.findall(text))
    count = 0
    for match in _QUOTE_COLON.finditer(text):
        start = end = match.start()
        while end > 0 and text[end - 1] == "\\":
            end -= 1
        count += (start - end) % 2 == 0
    return count


def _scan(value: Any) -> tuple[int, bool]:
    """(object keys, whether a float occurs) in a value parsed by orjson (dict, list and scalars only)."""
    keys, floats = 0, False
    if value.__class__ is dict:
        keys = len(value)
        members: Any = value.values()
    elif value.__class__ is list:
        members = value
    else:
        return 0, value.__class__ is float
    for member in members:
        kind = member.__class__
        if kind is float:
            floats = True
        elif kind is dict or kind is list:
            more, deeper = _scan(member)
            keys += more
            floats = floats or deeper
    return keys, floats


def loads(data: str | bytes) -> Any:
    """Parse JSON text; raises `json.JSONDecodeError` (malformed), `DuplicateKeyError`, `NotANumberError`.

    Fast path: orjson parses (C, several times faster than `json` with a pairs hook); when it reports as many
    keys as the text has, no key repeats, and the text is re-read with Decimal numbers only if a float occurs.
    Anything orjson refuses or a key count that differs takes the careful path, which names the problem."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    try:
        quick = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        keys, floats = _scan(quick)
        if keys == _key_count(text):
            return _EXACT.decode(text) if floats else quick
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
