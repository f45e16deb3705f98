"""Turning untrusted JSON events into model Events (the one place event input is validated)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from rulesvc.errors import InvalidEventError, Problem
from rulesvc.model import Event

TICKET_EVENT_TYPES = (
    "ticket.created",
    "ticket.updated",
    "ticket.accepted",
    "ticket.resolved",
    "ticket.paused",
    "ticket.resumed",
)


# The longest event id the decision log stores (API bodies are validated to it as well).
MAX_EVENT_ID = 200


TIME_MESSAGES: dict[str, str] = {
    "validation.not_a_time": "应为 ISO 8601 时间，如 2026-09-30T17:00:00+08:00",
    "validation.naive_time": "时间必须带时区偏移，如 2026-09-30T17:00:00+08:00",
}
"""The Chinese text of each code `parse_instant` answers."""


def parse_instant(value: Any) -> datetime | str:
    """An aware datetime from ISO 8601 text, or the code of what is wrong with it (`TIME_MESSAGES`)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else "validation.naive_time"
    if not isinstance(value, str):
        return "validation.not_a_time"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "validation.not_a_time"
    return parsed if parsed.tzinfo is not None else "validation.naive_time"


def _refuse(path: str, code: str, message: str) -> InvalidEventError:
    return InvalidEventError.of([Problem(path, code, message)])


def parse_time(value: Any, path: str) -> datetime:
    """ISO 8601 with an offset; naive times are refused (their meaning depends on the server's zone).
    InvalidEventError with `validation.not_a_time` or `validation.naive_time` at `path`."""
    parsed = parse_instant(value)
    if isinstance(parsed, str):
        shown = f"，收到 {value!r}" if isinstance(value, str) else ""
        raise _refuse(path, parsed, TIME_MESSAGES[parsed] + shown)
    return parsed


def normalise_value(value: Any) -> Any:
    """Floats become exact Decimals via their shortest repr (4999.99 stays 4999.99)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Mapping):
        return {str(k): normalise_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_value(v) for v in value]
    return value


def event_from_json(data: Mapping[str, Any], *, default_id: bool = False) -> Event:
    """Validate one event object: {"event_id", "type", "occurred_at", "ticket": {"kind", "id", ...}}."""
    if not isinstance(data, Mapping):
        raise _refuse("", "validation.not_an_object", "事件必须是 JSON 对象")
    event_id = data.get("event_id")
    if event_id is None and default_id:
        event_id = str(uuid.uuid4())
    if not isinstance(event_id, str) or not event_id:
        raise _refuse("event_id", "validation.required", "缺少 event_id（非空字符串）")
    etype = data.get("type")
    if etype not in TICKET_EVENT_TYPES:
        raise _refuse(
            "type",
            "validation.required" if etype is None else "validation.not_in_enum",
            "事件类型应为 "
            + "、".join(TICKET_EVENT_TYPES)
            + (f"，收到 {etype!r}" if etype is not None else ""),
        )
    occurred_at = parse_time(data.get("occurred_at", data.get("at")), "occurred_at")
    ticket = data.get("ticket")
    if not isinstance(ticket, Mapping):
        raise _refuse(
            "ticket",
            "validation.required" if ticket is None else "validation.not_an_object",
            "缺少工单 ticket（JSON 对象）",
        )
    for key, what in (("kind", "工单类型 ticket.kind"), ("id", "工单编号 ticket.id")):
        if not isinstance(ticket.get(key), str | int) or ticket.get(key) in ("", None):
            raise _refuse(f"ticket.{key}", "validation.required", f"缺少{what}（字符串）")
    snapshot = normalise_value(dict(ticket))
    snapshot["id"] = str(ticket["id"])
    return Event(event_id=event_id, type=str(etype), occurred_at=occurred_at, ticket=snapshot)
