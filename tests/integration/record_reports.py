"""The ticket reports as they were defined over the stored records (each ticket's events of the period,
in event time): the reference the reports over `decision_facts` are held to on periods that hold every
decision of their tickets, where both definitions agree."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from rulesvc.decisions.ticket_reports import (
    TicketReport,
    approvals_report,
    bucket_of,
    distribution_report,
    stages_report,
    workload_report,
)


def from_records(records: Iterable[Mapping[str, Any]], asked: TicketReport) -> dict[str, Any]:
    """The report computed here over the stored records of its period."""
    start, end, tz = asked.start, asked.end, asked.tz
    if asked.report == "approvals":
        return approvals(records, start, end, tz, asked.period, asked.kind)
    if asked.report == "tickets":
        return distribution(records, start, end, tz, asked.period, asked.field, asked.kind)
    if asked.report == "workload":
        return workload(records, start, end, tz, asked.group)
    return stages(records, start, end, tz, asked.kind)


AUTO_APPROVE = "auto_approve"
ASSIGN = "assign"
PERIODS = ("day", "week", "month")


def _when(record: Mapping[str, Any]) -> datetime | None:
    event = record.get("event") or {}
    for text in (event.get("occurred_at"), record.get("decided_at")):
        try:
            instant = datetime.fromisoformat(str(text))
        except ValueError:
            continue
        if instant.tzinfo is not None:
            return instant
    return None


def _ticket(record: Mapping[str, Any]) -> Mapping[str, Any]:
    ticket = (record.get("event") or {}).get("ticket")
    return ticket if isinstance(ticket, Mapping) else {}


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None and not isinstance(value, bool) else None
    except InvalidOperation:
        return None


def approvals(
    records: Iterable[Mapping[str, Any]],
    start: datetime,
    end: datetime,
    tz: str,
    period: str,
    kind: str | None,
) -> dict[str, Any]:
    """Per kind and period: tickets decided, auto-approved ones, the rate, their amounts (last seen)."""
    zone = ZoneInfo(tz)
    seen: dict[tuple[str, str], dict[str, tuple[bool, Decimal | None]]] = defaultdict(dict)
    for record in records:
        ticket, when = _ticket(record), _when(record)
        if when is None or (kind and ticket.get("kind") != kind):
            continue
        key = (str(ticket.get("kind", "")), bucket_of(when, period, zone))
        auto = any(a.get("type") == AUTO_APPROVE for a in record.get("actions") or ())
        earlier = seen[key].get(str(record.get("ticket_id")), (False, None))
        seen[key][str(record.get("ticket_id"))] = (
            earlier[0] or auto,
            _amount(ticket.get("amount")) or earlier[1],
        )
    rows = []
    for (kind_of, bucket), tickets in seen.items():
        automatic = [amount for yes, amount in tickets.values() if yes]
        amounts = [amount for _, amount in tickets.values() if amount is not None]
        rows.append(
            {
                "kind": kind_of,
                "bucket": bucket,
                "tickets": len(tickets),
                "auto_approved": len(automatic),
                "amount": sum(amounts, Decimal(0)),
                "auto_amount": sum((a for a in automatic if a is not None), Decimal(0)),
            }
        )
    return approvals_report(rows, start, end, tz, period, kind)


def distribution(
    records: Iterable[Mapping[str, Any]],
    start: datetime,
    end: datetime,
    tz: str,
    period: str,
    field: str,
    kind: str | None,
) -> dict[str, Any]:
    """Tickets per period and value of `field` (a ticket field, e.g. complaint_type; dotted for nested)."""
    zone = ZoneInfo(tz)
    buckets: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in records:
        ticket, when = _ticket(record), _when(record)
        if when is None or (kind and ticket.get("kind") != kind):
            continue
        value: Any = ticket
        for part in field.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            continue
        buckets[(bucket_of(when, period, zone), str(value))].add(str(record.get("ticket_id")))
    rows = [(bucket, value, len(tickets)) for (bucket, value), tickets in buckets.items()]
    return distribution_report(rows, start, end, tz, period, field, kind)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)], 3)


def _histories(
    records: Iterable[Mapping[str, Any]], kind: str | None
) -> dict[str, list[tuple[datetime, Mapping[str, Any], Mapping[str, Any]]]]:
    histories: dict[str, list[tuple[datetime, Mapping[str, Any], Mapping[str, Any]]]] = defaultdict(list)
    for record in records:
        ticket, when = _ticket(record), _when(record)
        if when is not None and not (kind and ticket.get("kind") != kind):
            histories[str(record.get("ticket_id"))].append((when, ticket, record))
    for events in histories.values():
        events.sort(key=lambda item: item[0])
    return histories


def stages(
    records: Iterable[Mapping[str, Any]], start: datetime, end: datetime, tz: str, kind: str | None
) -> dict[str, Any]:
    """Time spent in each stage (field `stage`): from the event that entered it to the event that left
    it, per kind and stage: count, average and p90 in seconds. A stay not left within the period is open
    and not counted (`open` counts them)."""
    spans: dict[tuple[str, str], list[float]] = defaultdict(list)
    still: dict[tuple[str, str], int] = defaultdict(int)
    for events in _histories(records, kind).values():
        current: tuple[str, datetime] | None = None
        for when, ticket, _ in events:
            stage = ticket.get("stage")
            if stage is None:
                continue
            if current is None or current[0] != stage:
                if current is not None:
                    spans[(str(ticket.get("kind", "")), current[0])].append(
                        (when - current[1]).total_seconds()
                    )
                current = (str(stage), when)
        if current is not None:
            still[(str(events[-1][1].get("kind", "")), current[0])] += 1
    rows = [
        {
            "kind": kind_of,
            "stage": stage,
            "count": len(spans.get((kind_of, stage), [])),
            "avg_seconds": round(sum(values) / len(values), 3)
            if (values := spans.get((kind_of, stage)))
            else None,
            "p90_seconds": _p90(values) if values else None,
            "open": still.get((kind_of, stage), 0),
        }
        for kind_of, stage in set(spans) | set(still)
    ]
    return stages_report(rows, start, end, tz, kind)


def workload(
    records: Iterable[Mapping[str, Any]], start: datetime, end: datetime, tz: str, group: str | None
) -> dict[str, Any]:
    """Tickets per routing group (the last `assign`) and assignee (field `owner`), with the average time
    from each ticket's first to its last event in the period."""
    buckets: dict[tuple[str, str], list[float]] = defaultdict(list)
    for events in _histories(records, None).values():
        routed = ""
        for _, _, record in events:
            for action in record.get("actions") or ():
                if action.get("type") == ASSIGN and action.get("group"):
                    routed = str(action["group"])
        if group and routed != group:
            continue
        owner = str(events[-1][1].get("owner", ""))
        buckets[(routed, owner)].append((events[-1][0] - events[0][0]).total_seconds())
    rows = [
        (routed, owner, len(times), round(sum(times) / len(times), 3))
        for (routed, owner), times in buckets.items()
    ]
    return workload_report(rows, start, end, tz, group)
