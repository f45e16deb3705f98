"""The ticket reports (`rulesvc.decisions.ticket_reports`) aggregated by PostgreSQL: approvals, the
distribution of tickets by a field, time per stage and workload over [start, end) of decision time, each
one statement that reads the stored records as `jsonb` and answers with the groups only.

They give the same groups as the Python functions over the same records (tests hold them side by side):
event time buckets in the report's time zone (`to_char(... AT TIME ZONE tz)`), a ticket counted once per
bucket, amounts exact (`numeric`), the last seen amount per ticket and bucket, stays between the events that
changed the stage, nearest-rank p90 (`percentile_disc(0.9)`), the last `assign` group. Group order and
number formatting are left to the caller. SQLite has no time zones or `jsonb`: there the Python functions
run over the records (`DecisionStore.decision_records`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, and_, func, literal, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnClause

from rulesvc.decisions import ticket_reports
from rulesvc.decisions.ticket_reports import TicketReport
from rulesvc.storage.tables import DecisionRow, UTCDateTime
from rulesvc.storage.timer_tables import TicketRow, TimerRow

PERIOD_FORMATS = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}

_FACTS = """
    SELECT d.decided_at, d.chain_seq, r ->> 'ticket_id' AS tid, r -> 'event' -> 'ticket' AS t,
           (r -> 'event' ->> 'occurred_at')::timestamptz AS occ, r -> 'actions' AS acts
    FROM (SELECT decided_at, chain_seq, record::jsonb AS r FROM decisions
          WHERE decided_at >= :start AND decided_at < :end OFFSET 0) d
    WHERE jsonb_typeof(r -> 'event' -> 'ticket') = 'object' AND r -> 'event' ->> 'occurred_at' IS NOT NULL
"""
"""One row per decision of the period with a ticket and an event time (what `_histories` keeps). `OFFSET 0`
keeps the subquery from being flattened into its readers: each record is parsed once, not once for every
`r -> ...` that reads it."""

_KIND = "(CAST(:kind AS text) IS NULL OR t ->> 'kind' = :kind)"


def approvals(
    session: Session, start: datetime, end: datetime, tz: str, period: str, kind: str | None
) -> list[dict[str, Any]]:
    """`[{"kind", "bucket", "tickets", "auto_approved", "amount", "auto_amount"}]` (amounts Decimal)."""
    rows = session.execute(
        text(
            f"""
            WITH f AS ({_FACTS}),
            per_ticket AS (
                SELECT coalesce(t ->> 'kind', '') AS kind, to_char(occ AT TIME ZONE :tz, :fmt) AS bucket, tid,
                       bool_or(acts @> '[{{"type": "auto_approve"}}]') AS auto,
                       (array_agg((t ->> 'amount')::numeric ORDER BY decided_at DESC, chain_seq DESC)
                          FILTER (WHERE jsonb_typeof(t -> 'amount') = 'number'
                                  AND (t ->> 'amount')::numeric <> 0))[1] AS amount
                FROM f WHERE {_KIND}
                GROUP BY 1, 2, 3
            )
            SELECT kind, bucket, count(*), count(*) FILTER (WHERE auto),
                   coalesce(sum(amount), 0), coalesce(sum(amount) FILTER (WHERE auto), 0)
            FROM per_ticket GROUP BY 1, 2
            """
        ),
        {"start": start, "end": end, "tz": tz, "fmt": PERIOD_FORMATS[period], "kind": kind},
    ).all()
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


def distribution(
    session: Session, start: datetime, end: datetime, tz: str, period: str, field: str, kind: str | None
) -> list[tuple[str, str, int]]:
    """(bucket, value, tickets) of a ticket field (dotted for nested; JSON text of a non-string value)."""
    rows = session.execute(
        text(
            f"""
            WITH f AS ({_FACTS})
            SELECT to_char(occ AT TIME ZONE :tz, :fmt), t #>> CAST(:path AS text[]), count(DISTINCT tid)
            FROM f WHERE {_KIND} AND t #>> CAST(:path AS text[]) IS NOT NULL
            GROUP BY 1, 2
            """
        ),
        {
            "start": start,
            "end": end,
            "tz": tz,
            "fmt": PERIOD_FORMATS[period],
            "kind": kind,
            "path": field.split("."),
        },
    ).all()
    return [(str(b), str(v), int(n)) for b, v, n in rows]


def stages(session: Session, start: datetime, end: datetime, kind: str | None) -> list[dict[str, Any]]:
    """`[{"kind", "stage", "count", "avg_seconds", "p90_seconds", "open"}]` (seconds float or None)."""
    rows = session.execute(
        text(
            f"""
            WITH f AS ({_FACTS}),
            staged AS (
                SELECT tid, coalesce(t ->> 'kind', '') AS kind, t ->> 'stage' AS stage, occ,
                       row_number() OVER (PARTITION BY tid ORDER BY occ, decided_at, chain_seq) AS n
                FROM f WHERE {_KIND} AND t ->> 'stage' IS NOT NULL
            ),
            entered AS (
                SELECT tid, kind, stage, occ, n FROM (
                    SELECT *, lag(stage) OVER (PARTITION BY tid ORDER BY n) AS before FROM staged
                ) s WHERE before IS NULL OR before <> stage
            ),
            stays AS (
                SELECT stage,
                       lead(kind) OVER (PARTITION BY tid ORDER BY n) AS left_kind,
                       kind,
                       extract(epoch FROM lead(occ) OVER (PARTITION BY tid ORDER BY n) - occ) AS seconds
                FROM entered
            )
            SELECT coalesce(left_kind, kind) AS kind_of, stage,
                   count(seconds), avg(seconds),
                   percentile_disc(0.9) WITHIN GROUP (ORDER BY seconds),
                   count(*) FILTER (WHERE seconds IS NULL)
            FROM stays GROUP BY 1, 2
            """
        ),
        {"start": start, "end": end, "kind": kind},
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


def workload(
    session: Session, start: datetime, end: datetime, group: str | None
) -> list[tuple[str, str, int, float]]:
    """(group, assignee, tickets, average handling seconds): each ticket's last `assign` group, the owner
    of its last event, the time from its first to its last event (in event time)."""
    rows = session.execute(
        text(
            f"""
            WITH f AS ({_FACTS}),
            per_ticket AS (
                SELECT tid,
                       (array_agg(CASE WHEN t ? 'owner' THEN coalesce(t ->> 'owner', 'None') ELSE '' END
                                  ORDER BY occ DESC, decided_at DESC, chain_seq DESC))[1] AS owner,
                       extract(epoch FROM max(occ) - min(occ)) AS seconds
                FROM f GROUP BY tid
            ),
            routed AS (
                SELECT DISTINCT ON (tid) tid, a.action ->> 'group' AS grp
                FROM f CROSS JOIN LATERAL jsonb_array_elements(
                    CASE WHEN jsonb_typeof(acts) = 'array' THEN acts ELSE '[]'::jsonb END
                ) WITH ORDINALITY AS a(action, i)
                WHERE a.action ->> 'type' = 'assign' AND coalesce(a.action ->> 'group', '') <> ''
                ORDER BY tid, occ DESC, decided_at DESC, chain_seq DESC, i DESC
            )
            SELECT coalesce(r.grp, '') AS grp, p.owner, count(*), avg(p.seconds)
            FROM per_ticket p LEFT JOIN routed r ON r.tid = p.tid
            WHERE CAST(:grp AS text) IS NULL OR coalesce(r.grp, '') = :grp
            GROUP BY 1, 2
            """
        ),
        {"start": start, "end": end, "grp": group},
    ).all()
    return [(str(g), str(o), int(n), round(float(avg), 3)) for g, o, n, avg in rows]


def aggregated_report(session: Session, asked: TicketReport) -> dict[str, Any]:
    """The report as `rulesvc.decisions.ticket_reports` answers it, of groups aggregated here."""
    start, end, tz = asked.start, asked.end, asked.tz
    if asked.report == "approvals":
        rows = approvals(session, start, end, tz, asked.period, asked.kind)
        return ticket_reports.approvals_report(rows, start, end, tz, asked.period, asked.kind)
    if asked.report == "tickets":
        spread = distribution(session, start, end, tz, asked.period, asked.field, asked.kind)
        return ticket_reports.distribution_report(
            spread, start, end, tz, asked.period, asked.field, asked.kind
        )
    if asked.report == "workload":
        return ticket_reports.workload_report(
            workload(session, start, end, asked.group), start, end, tz, asked.group
        )
    return ticket_reports.stages_report(stages(session, start, end, asked.kind), start, end, tz, asked.kind)


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
    seconds. Only the decisions of timer firings are read (`event_id` `timer:...`)."""
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
            DecisionRow.event_id.startswith("timer:"),
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
