"""Reports over the decided ticket events of a period: auto-approval rate and amounts, distribution of
tickets by a field over time, workload by group and assignee, time per stage.

Each answers `{"from", "to", "timezone", ..., "groups": [{"key": {...}, <figures>}]}` like the SLA report,
so the same file renderer serves them. They read the facts of each decision (`Fact`: what its event said
and the ticket's state folded at write time, in the order decisions are written), never the records, so
each is one pass over the facts of its period [from, to) of decision time: on PostgreSQL one statement
(`rulesvc.storage.report_reads`), elsewhere `from_facts` here; the `*_report` functions make the answer of
the figures either way. Buckets are days, ISO weeks or months of event time (`occurred_at`) in the
report's time zone.

What a ticket counts as, in a bucket or the period, is its state at its last decision there (the last
one before its next decision falls outside): one ticket once per bucket, with its value of the field, its
last known amount, whether a decision of the bucket auto-approved it. A stay in a stage is counted where
the decision that left it falls, with its whole length in event time (also when it began before the
period); a ticket still in a stage at its last decision of the period counts as open there. Handling time
runs from the ticket's first event to its last of the period.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from rulesvc import exactjson


@dataclass(frozen=True)
class TicketReport:
    """One ticket report asked for: `report` is approvals, tickets (the distribution by `field`), workload
    (of one `group` when given) or stages."""

    report: str
    start: datetime
    end: datetime
    tz: str = "Asia/Shanghai"
    period: str = "day"
    kind: str | None = None
    field: str = ""
    group: str | None = None


class Fact(NamedTuple):
    """A decision's facts (`decision_facts`; see `rulesvc.storage.fact_tables` for each)."""

    decided_at: datetime
    occurred_at: datetime
    kind: str
    owner: str
    fields: Mapping[str, Any]
    first_occurred_at: datetime
    stage: str | None
    left_stage: str | None
    stay_seconds: float | None
    amount: Decimal | None
    auto_decided_at: datetime | None
    auto_occurred_at: datetime | None
    routed: str
    next_decided_at: datetime | None
    next_occurred_at: datetime | None


PERIODS = ("day", "week", "month")


def from_facts(facts: Iterable[Fact], asked: TicketReport) -> dict[str, Any]:
    """The report computed here over the facts of the decisions of its period."""
    start, end, tz, period, kind = asked.start, asked.end, asked.tz, asked.period, asked.kind
    zone = ZoneInfo(tz)
    if asked.report == "workload":
        return workload_report(_workload(facts, end, asked.group), start, end, tz, asked.group)
    chosen = [f for f in facts if not kind or f.kind == kind]
    if asked.report == "stages":
        return stages_report(_stages(chosen, end), start, end, tz, kind)
    last = [f for f in chosen if _last_in_bucket(f, end, period, zone)]
    if asked.report == "approvals":
        return approvals_report(_approvals(last, start, period, zone), start, end, tz, period, kind)
    spread: dict[tuple[str, str], int] = defaultdict(int)
    for f in last:
        value: Any = f.fields
        for part in asked.field.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            text = value if isinstance(value, str) else exactjson.dumps(value)
            spread[(bucket_of(f.occurred_at, period, zone), text)] += 1
    rows = [(bucket, value, n) for (bucket, value), n in spread.items()]
    return distribution_report(rows, start, end, tz, period, asked.field, kind)


def bucket_of(instant: datetime, period: str, zone: ZoneInfo) -> str:
    """The day, ISO week or month of `instant` in `zone` (`2026-09-30`, `2026-W40`, `2026-09`)."""
    local = instant.astimezone(zone)
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


def _last_in_period(fact: Fact, end: datetime) -> bool:
    return fact.next_decided_at is None or fact.next_decided_at >= end


def _last_in_bucket(fact: Fact, end: datetime, period: str, zone: ZoneInfo) -> bool:
    return (
        _last_in_period(fact, end)
        or fact.next_occurred_at is None
        or bucket_of(fact.next_occurred_at, period, zone) != bucket_of(fact.occurred_at, period, zone)
    )


def _approvals(last: Iterable[Fact], start: datetime, period: str, zone: ZoneInfo) -> list[dict[str, Any]]:
    figures: dict[tuple[str, str], list[Any]] = {}
    for f in last:
        bucket = bucket_of(f.occurred_at, period, zone)
        auto = (
            f.auto_decided_at is not None
            and f.auto_occurred_at is not None
            and f.auto_decided_at >= start
            and bucket_of(f.auto_occurred_at, period, zone) == bucket
        )
        amount = f.amount or Decimal(0)
        row = figures.setdefault((f.kind, bucket), [0, 0, Decimal(0), Decimal(0)])
        row[0] += 1
        row[1] += auto
        row[2] += amount
        row[3] += amount if auto else 0
    return [
        {
            "kind": k,
            "bucket": b,
            "tickets": n,
            "auto_approved": a,
            "amount": amount,
            "auto_amount": auto_amount,
        }
        for (k, b), (n, a, amount, auto_amount) in figures.items()
    ]


def _stages(facts: Iterable[Fact], end: datetime) -> list[dict[str, Any]]:
    spans: dict[tuple[str, str], list[float]] = defaultdict(list)
    still: dict[tuple[str, str], int] = defaultdict(int)
    for f in facts:
        if f.left_stage is not None and f.stay_seconds is not None:
            spans[(f.kind, f.left_stage)].append(f.stay_seconds)
        if f.stage is not None and _last_in_period(f, end):
            still[(f.kind, f.stage)] += 1
    return [
        {
            "kind": kind_of,
            "stage": stage,
            "count": len(values := spans.get((kind_of, stage), [])),
            "avg_seconds": round(sum(values) / len(values), 3) if values else None,
            "p90_seconds": _p90(values) if values else None,
            "open": still.get((kind_of, stage), 0),
        }
        for kind_of, stage in set(spans) | set(still)
    ]


def _workload(facts: Iterable[Fact], end: datetime, group: str | None) -> list[tuple[str, str, int, float]]:
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for f in facts:
        if _last_in_period(f, end) and (not group or f.routed == group):
            times[(f.routed, f.owner)].append((f.occurred_at - f.first_occurred_at).total_seconds())
    return [(g, o, len(t), round(sum(t) / len(t), 3)) for (g, o), t in times.items()]


def _head(start: datetime, end: datetime, tz: str, **more: Any) -> dict[str, Any]:
    return {"from": start.isoformat(), "to": end.isoformat(), "timezone": tz, **more}


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)], 3)


def approvals_report(
    rows: Iterable[Mapping[str, Any]], start: datetime, end: datetime, tz: str, period: str, kind: str | None
) -> dict[str, Any]:
    """The approvals report of per kind and period figures (`kind`, `bucket`, `tickets`, `auto_approved`,
    `amount`, `auto_amount` as Decimal), aggregated here or by the database."""
    groups = [
        {
            "key": {"kind": row["kind"], period: row["bucket"]},
            "tickets": row["tickets"],
            "auto_approved": row["auto_approved"],
            "auto_approval_rate": round(row["auto_approved"] / row["tickets"], 4),
            "amount": _number(row["amount"]),
            "auto_amount": _number(row["auto_amount"]),
        }
        for row in sorted(rows, key=lambda r: (r["kind"], r["bucket"]))
    ]
    return _head(start, end, tz, period=period, kind=kind or "", groups=groups)


def distribution_report(
    rows: Iterable[tuple[str, str, int]],
    start: datetime,
    end: datetime,
    tz: str,
    period: str,
    field: str,
    kind: str | None,
) -> dict[str, Any]:
    """The distribution report of (period bucket, value, tickets), aggregated here or by the database."""
    groups = [
        {"key": {period: bucket, "value": value}, "tickets": tickets}
        for bucket, value, tickets in sorted(rows)
    ]
    return _head(start, end, tz, period=period, field=field, kind=kind or "", groups=groups)


def stages_report(
    rows: Iterable[Mapping[str, Any]], start: datetime, end: datetime, tz: str, kind: str | None
) -> dict[str, Any]:
    """The stages report of per kind and stage figures, aggregated here or by the database."""
    groups = [
        {
            "key": {"kind": row["kind"], "stage": row["stage"]},
            **{name: row[name] for name in ("count", "avg_seconds", "p90_seconds", "open")},
        }
        for row in sorted(rows, key=lambda r: (r["kind"], r["stage"]))
    ]
    return _head(start, end, tz, kind=kind or "", groups=groups)


def workload_report(
    rows: Iterable[tuple[str, str, int, float]], start: datetime, end: datetime, tz: str, group: str | None
) -> dict[str, Any]:
    """The workload report of (group, assignee, tickets, average handling seconds), aggregated here or by
    the database."""
    groups = [
        {"key": {"group": routed, "assignee": owner}, "tickets": n, "avg_handling_seconds": seconds}
        for routed, owner, n, seconds in sorted(rows)
    ]
    return _head(start, end, tz, group=group or "", groups=groups)
