"""Turning untrusted JSON events into model Events (the one place event input is validated)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from rulesvc.errors import InvalidEventError
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


def parse_time(value: Any, path: str) -> datetime:
    """ISO 8601 with an offset; naive times are refused (their meaning depends on the server's zone)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidEventError(f"{path}: not an ISO 8601 time: {value!r}", path) from exc
    else:
        raise InvalidEventError(f"{path}: expected an ISO 8601 time string", path)
    if parsed.tzinfo is None:
        raise InvalidEventError(f"{path}: time must carry a UTC offset, e.g. 2026-09-30T17:00:00+08:00", path)
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
        raise InvalidEventError("an event must be a JSON object", "")
    event_id = data.get("event_id")
    if event_id is None and default_id:
        event_id = str(uuid.uuid4())
    if not isinstance(event_id, str) or not event_id:
        raise InvalidEventError("event_id: required non-empty string", "event_id")
    etype = data.get("type")
    if etype not in TICKET_EVENT_TYPES:
        raise InvalidEventError(f"type: must be one of {', '.join(TICKET_EVENT_TYPES)}", "type")
    occurred_at = parse_time(data.get("occurred_at", data.get("at")), "occurred_at")
    ticket = data.get("ticket")
    if not isinstance(ticket, Mapping):
        raise InvalidEventError("ticket: required object", "ticket")
    for key in ("kind", "id"):
        if not isinstance(ticket.get(key), str | int) or ticket.get(key) in ("", None):
            raise InvalidEventError(f"ticket.{key}: required", f"ticket.{key}")
    snapshot = normalise_value(dict(ticket))
    snapshot["id"] = str(ticket["id"])
    return Event(event_id=event_id, type=str(etype), occurred_at=occurred_at, ticket=snapshot)
