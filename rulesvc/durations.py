"""Duration literals used in rulesets and action JSON: `90m`, `2h`, `1.5h`, `1h30m`, `2小时`."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s|天|小时|分钟|秒)")
_UNIT_SECONDS = {"d": 86400, "天": 86400, "h": 3600, "小时": 3600, "m": 60, "分钟": 60, "s": 1, "秒": 1}


def parse_duration(text: object) -> timedelta | None:
    """`90m`, `2h`, `1.5h`, `1h30m`, `2小时` → timedelta; None when the text is not a duration."""
    if not isinstance(text, str):
        return None
    compact = text.strip().replace(" ", "")
    if not compact:
        return None
    total = Decimal(0)
    position = 0
    for match in _DURATION.finditer(compact):
        if match.start() != position:
            return None
        try:
            total += Decimal(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        except InvalidOperation:
            return None
        position = match.end()
    if position != len(compact):
        return None
    return (
        timedelta(seconds=float(total))
        if total != total.to_integral_value()
        else timedelta(seconds=int(total))
    )


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"
