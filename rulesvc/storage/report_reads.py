"""The reports' reads: the ticket reports (`rulesvc.decisions.ticket_reports`) over the facts of each
decision (`decision_facts`), the timers due and the late fires.

On PostgreSQL each ticket report is one statement, one pass over the facts of the period (read through
`ix_decision_facts_recent`) answering with the groups only; it gives the same groups as
`ticket_reports.from_facts`, which makes them on SQLite (no time zones there) over the same rows (tests
hold them side by side): buckets in the report's time zone (`to_char(... AT TIME ZONE tz)`), amounts exact
(`numeric`), nearest-rank p90 (`percentile_disc(0.9)`). Group order and number formatting are left to the
caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, Text, and_, cast, func, literal, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnClause

from rulesvc import exactjson
from rulesvc.decisions import ticket_reports
from rulesvc.decisions.ticket_reports import Fact, TicketReport
from rulesvc.storage.fact_tables import DecisionFactRow
from rulesvc.storage.tables import DecisionRow, UTCDateTime
from rulesvc.storage.timer_tables import TicketRow, TimerRow

TIMER_FIRES: ColumnClause[str] = literal_column("'timer:%'")
"""The event ids of timer firings, a constant: the predicate of the partial index `ix_decisions_timer_fires`
(migration 0023), which the planner only uses for a query saying the same."""

PERIOD_FORMATS = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}


def bucket_at(column: str) -> str:
    return f"to_char({column} AT TIME ZONE :tz, :fmt)"


_OF_PERIOD = "decided_at >= :start AND decided_at < :end"
OF_KIND = "(CAST(:kind AS text) IS NULL OR kind = :kind)"
LAST_OF_PERIOD = "(next_decided_at IS NULL OR next_decided_at >= :end)"
"""The ticket's last decision of the period."""
LAST_IN_BUCKET = f"({LAST_OF_PERIOD} OR {bucket_at('next_occurred_at')} <> {bucket_at('occurred_at')})"
"""The ticket's last decision of the period in its bucket."""


def approvals(session: Session, asked: TicketReport) -> list[dict[str, Any]]:
    """`[{"kind", "bucket", "tickets", "auto_approved", "amount", "auto_amount"}]` (amounts Decimal)."""
    rows = session.execute(
        text(
            f"""
            SELECT kind, bucket, count(*), count(*) FILTER (WHERE auto),
                   coalesce(sum(amount), 0), coalesce(sum(amount) FILTER (WHERE auto), 0)
            FROM (
                SELECT kind, {bucket_at("occurred_at")} AS bucket, amount,
                       coalesce(auto_decided_at >= :start
                                AND {bucket_at("auto_occurred_at")} = {bucket_at("occurred_at")}, false) AS auto
                FROM decision_facts WHERE {_OF_PERIOD} AND {OF_KIND} AND {LAST_IN_BUCKET}
            ) last GROUP BY 1, 2
            """
        ),
        _params(asked),
    ).all()
    return approval_rows(rows)


def approval_rows(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """The approvals figures of (kind, bucket, tickets, auto-approved, amount, auto amount) rows."""
    return [
        {
            "kind": k,
            "bucket": b,
            "tickets": int(n),
            "auto_approved": int(a),
            "amount": Decimal(amount),
            "auto_amount": Decimal(auto_amount),
        }
        for k, b, n, a, amount, auto_amount in rows
    ]


def distribution(session: Session, asked: TicketReport) -> list[tuple[str, str, int]]:
    """(bucket, value, tickets) of a ticket field (dotted for nested; JSON text of a non-string value)."""
    rows = session.execute(
        text(
            f"""
            SELECT {bucket_at("occurred_at")}, fields #>> CAST(:path AS text[]), count(*)
            FROM decision_facts
            WHERE {_OF_PERIOD} AND {OF_KIND} AND {LAST_IN_BUCKET}
              AND fields #>> CAST(:path AS text[]) IS NOT NULL
            GROUP BY 1, 2
            """
        ),
        {**_params(asked), "path": asked.field.split(".")},
    ).all()
    return [(str(b), str(v), int(n)) for b, v, n in rows]


def stages(session: Session, asked: TicketReport) -> list[dict[str, Any]]:
    """`[{"kind", "stage", "count", "avg_seconds", "p90_seconds", "open"}]` (seconds float or None): the
    stays left in the period, and the tickets in a stage at their last decision of the period."""
    rows = session.execute(
        text(
            f"""
            SELECT kind, stage, count(stay), avg(stay),
                   percentile_disc(0.9) WITHIN GROUP (ORDER BY stay), count(*) FILTER (WHERE open)
            FROM (
                SELECT kind, left_stage AS stage, stay_seconds AS stay, false AS open FROM decision_facts
                WHERE {_OF_PERIOD} AND {OF_KIND} AND left_stage IS NOT NULL
                UNION ALL
                SELECT kind, stage, NULL, true FROM decision_facts
                WHERE {_OF_PERIOD} AND {OF_KIND} AND stage IS NOT NULL AND {LAST_OF_PERIOD}
            ) s
            GROUP BY 1, 2
            """
        ),
        _params(asked),
    ).all()
    return [
        {
            "kind": k,
            "stage": s,
            "count": int(n),
            "avg_seconds": None if avg is None else round(float(avg), 3),
            "p90_seconds": None if p90 is None else round(float(p90), 3),
            "open": int(still),
        }
        for k, s, n, avg, p90, still in rows
    ]


def workload(session: Session, asked: TicketReport) -> list[tuple[str, str, int, float]]:
    """(group, assignee, tickets, average handling seconds) of each ticket's last decision of the period:
    its last `assign` group, the owner its event gave, the time since the ticket's first event."""
    rows = session.execute(
        text(
            f"""
            SELECT routed, owner, count(*), avg(extract(epoch FROM occurred_at - first_occurred_at))
            FROM decision_facts
            WHERE {_OF_PERIOD} AND {LAST_OF_PERIOD} AND (CAST(:grp AS text) IS NULL OR routed = :grp)
            GROUP BY 1, 2
            """
        ),
        {**_params(asked), "grp": asked.group},
    ).all()
    return workload_rows(rows)


def workload_rows(rows: Iterable[Sequence[Any]]) -> list[tuple[str, str, int, float]]:
    """The workload figures of (group, assignee, tickets, average handling seconds) rows."""
    return [(str(g), str(o), int(n), round(float(avg), 3)) for g, o, n, avg in rows]


def _params(asked: TicketReport) -> dict[str, Any]:
    return {
        "start": asked.start,
        "end": asked.end,
        "tz": asked.tz,
        "fmt": PERIOD_FORMATS[asked.period],
        "kind": asked.kind,
    }


def period_facts(session: Session, start: datetime, end: datetime) -> list[Fact]:
    """The facts of the decisions made in [start, end)."""
    columns = [
        cast(DecisionFactRow.fields, Text) if name == "fields" else getattr(DecisionFactRow, name)
        for name in Fact._fields
    ]
    rows = session.execute(
        select(*columns).where(
            DecisionFactRow.decided_at >= literal(start, UTCDateTime()),
            DecisionFactRow.decided_at < literal(end, UTCDateTime()),
        )
    ).all()
    return [
        Fact._make(exactjson.loads(v) if n == "fields" else v for n, v in zip(Fact._fields, row, strict=True))
        for row in rows
    ]


def ticket_report(session: Session, asked: TicketReport) -> dict[str, Any]:
    """The report as `rulesvc.decisions.ticket_reports` answers it: aggregated by PostgreSQL, or made by
    `from_facts` over the facts of the period."""
    if session.get_bind().dialect.name != "postgresql":
        return ticket_reports.from_facts(period_facts(session, asked.start, asked.end), asked)
    start, end, tz = asked.start, asked.end, asked.tz
    if asked.report == "approvals":
        return ticket_reports.approvals_report(
            approvals(session, asked), start, end, tz, asked.period, asked.kind
        )
    if asked.report == "tickets":
        return ticket_reports.distribution_report(
            distribution(session, asked), start, end, tz, asked.period, asked.field, asked.kind
        )
    if asked.report == "workload":
        return ticket_reports.workload_report(workload(session, asked), start, end, tz, asked.group)
    return ticket_reports.stages_report(stages(session, asked), start, end, tz, asked.kind)


_FIRST_FOUR: list[ColumnClause[Any]] = [literal_column(str(n)) for n in range(1, 5)]
"""GROUP BY the first four columns by position (their expressions hold bound parameters)."""


def _ruleset_of(session: Session) -> Any:
    """The ruleset of a timer's starting rule (`ruleset/rule`)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.split_part(TimerRow.rule, "/", 1)
    return func.substr(TimerRow.rule, 1, func.instr(TimerRow.rule, "/") - 1)


def _only(statement: Select[Any], ruleset: str | None, group: str | None) -> Select[Any]:
    """Only the timers started by a rule of `ruleset`, of the tickets routed to `group` (those given)."""
    if ruleset:
        statement = statement.where(TimerRow.rule.startswith(ruleset + "/", autoescape=True))
    if group:
        statement = statement.where(TicketRow.group_name == group)
    return statement


def timers_due(
    session: Session,
    now: datetime,
    until: datetime,
    late_after: timedelta,
    ruleset: str | None,
    group: str | None,
) -> list[dict[str, Any]]:
    """Pending timer points by ruleset, routing group, timer and point: how many fall due in [now, until),
    how many are overdue (their time passed more than `late_after` ago and they have not fired), and the
    next one's time. Read through `ix_timers_next_fire_at` (only timers with a point left)."""
    ruleset_of = _ruleset_of(session)
    soon = and_(
        TimerRow.next_fire_at >= literal(now, UTCDateTime()),
        TimerRow.next_fire_at < literal(until, UTCDateTime()),
    )
    late = TimerRow.next_fire_at < literal(now - late_after, UTCDateTime())
    statement = (
        select(
            ruleset_of,
            func.coalesce(TicketRow.group_name, ""),
            TimerRow.name,
            TimerRow.next_point,
            func.count().filter(soon),
            func.count().filter(late),
            func.min(TimerRow.next_fire_at).filter(or_(soon, late)),
            func.count().filter(and_(soon, TimerRow.provisional)),
        )
        .select_from(TimerRow)
        .outerjoin(TicketRow, TicketRow.ticket_id == TimerRow.ticket_id)
        .where(TimerRow.next_fire_at.is_not(None), TimerRow.next_fire_at < literal(until, UTCDateTime()))
        .group_by(*_FIRST_FOUR)
    )
    return [
        {
            "key": {"ruleset": str(r), "group": str(g), "timer": str(t), "point": str(p or "")},
            "due_soon": int(n),
            "overdue": int(o),
            "next_at": first.isoformat() if first is not None else None,
            "provisional": int(prov),
        }
        for r, g, t, p, n, o, first, prov in session.execute(_only(statement, ruleset, group)).all()
        if n or o
    ]


def late_fires(
    session: Session,
    start: datetime,
    end: datetime,
    late_after: timedelta,
    ruleset: str | None,
    group: str | None,
) -> list[dict[str, Any]]:
    """Timer points fired in [start, end) of decision time, by ruleset, routing group, timer and point: how
    many fired, how many of them late (`late_by` ≥ `late_after`), the average and the longest lateness in
    seconds. Only the decisions of timer firings are read (`event_id` `timer:...`, through their index)."""
    if session.get_bind().dialect.name == "postgresql":
        event = func.cast(DecisionRow.record, JSONB)["event"]["timer"]
        name, point = event["name"].astext, event["point"].astext
        late_by = func.cast(event["late_by"].astext, Float)
    else:
        name = func.json_extract(DecisionRow.record, "$.event.timer.name")
        point = func.json_extract(DecisionRow.record, "$.event.timer.point")
        late_by = func.cast(func.json_extract(DecisionRow.record, "$.event.timer.late_by"), Float)
    fired = (
        select(
            DecisionRow.ticket_id.label("ticket_id"),
            name.label("timer"),
            point.label("point"),
            late_by.label("late_by"),
        )
        .where(
            DecisionRow.decided_at >= literal(start, UTCDateTime()),
            DecisionRow.decided_at < literal(end, UTCDateTime()),
            DecisionRow.event_id.like(TIMER_FIRES),  # as written, for ix_decisions_timer_fires
        )
        .subquery()
    )
    ruleset_of = _ruleset_of(session)
    is_late = fired.c.late_by >= late_after.total_seconds()
    statement = (
        select(
            func.coalesce(ruleset_of, ""),
            func.coalesce(TicketRow.group_name, ""),
            fired.c.timer,
            fired.c.point,
            func.count(),
            func.count().filter(is_late),
            func.avg(fired.c.late_by).filter(is_late),
            func.max(fired.c.late_by),
        )
        .select_from(fired)
        .outerjoin(TimerRow, and_(TimerRow.ticket_id == fired.c.ticket_id, TimerRow.name == fired.c.timer))
        .outerjoin(TicketRow, TicketRow.ticket_id == fired.c.ticket_id)
        .group_by(*_FIRST_FOUR)
    )
    return [
        {
            "key": {"ruleset": str(r), "group": str(g), "timer": str(t), "point": str(p)},
            "fired": int(n),
            "late": int(late),
            "avg_late_seconds": None if avg is None else round(float(avg), 3),
            "max_late_seconds": None if longest is None else round(float(longest), 3),
        }
        for r, g, t, p, n, late, avg, longest in session.execute(_only(statement, ruleset, group)).all()
    ]
