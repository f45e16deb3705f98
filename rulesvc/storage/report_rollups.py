"""Per-day roll-ups of the reports on PostgreSQL (`report_rollups`, migration 0024), so that a report over a
period reads a number of rows bounded by its days, not by its decisions.

A day is one of Asia/Shanghai, of decision time (the time every report's period is of). A day is *closed*
`GRACE` after its end: every decision of it has been committed by then (a decision's time is taken when it
is made, moments before its commit). The worker rolls every closed day up (`roll_closed`, every 5
minutes), under a transaction-level advisory lock, so that replicas roll a day once (`report_rollup_days`
says which days of which part are stored); a report finding days of its period not rolled up yet rolls
them itself when they are a few (`CHUNK_DAYS`), else reads the facts of its whole period. The days not closed yet, and a period's end when it is
not at midnight, are read from the facts as before (`rulesvc.storage.report_reads`). A decision written
later with the time of a rolled day (not done by the service; a restore or a hand-written row could) drops
that day's roll-ups in its transaction (`forget_days`), to be rolled again.

What makes the ticket reports additive by day: a ticket counts in a bucket (or the period) by its last
decision there, the one whose next decision falls outside. Over a period [S, E) of the facts of rolled days
[S, C) and live ones [C, E):

    last rows = the rows of [S, C)                          (positive parts: a row by its own day)
              - the rows of [S, C) whose next is in [S, C)  (parts ending in `-`: by the day of the next
                (in the same bucket, for the buckets)         decision, with the row's own day, `since_day`)
              - the rows of [S, C) whose next is in [C, E)  (live, through `ix_decision_facts_next`)
              + the last rows among those of [C, E)         (live, as before)

Each part's sums depend on rows that no longer change once the day it is filed under is closed (the next
decision of a row is written in its own day's transaction). Buckets (day, ISO week, month of event time in
the report's time zone) are made from the event days kept in each group, so roll-ups serve the reports in
Asia/Shanghai whose period starts at a midnight there (the console's always does); others are read live.

Parts (the columns each fills, besides `day`, `n`):

- `approvals` / `approvals-`: `kind`, `occ_day`, `next_occ_day` (`-` only), `auto_day`, `auto_occ_day`;
  `total` the sum of amounts;
- `stays`: `kind`, `key_a` the stage left, `bin` the stay's bucket (64 a doubling: each ≈ 1.1 % wide),
  `total` the sum of stays, `top` the longest; the p90 of a stage is the longest stay of the bucket holding
  the 90th percentile: exact when it is the longest of its bucket, otherwise at most ≈ 1.1 % above it (the
  only figure of these reports the roll-ups approximate);
- `open` / `open-`: `kind`, `key_a` the stage;
- `workload` / `workload-`: `key_a` the routing group, `key_b` the owner, `total` the sum of handling
  seconds;
- `field:<path>` / `field:<path>-`: `kind`, `occ_day`, `next_occ_day` (`-` only), `key_a` the value,
  rolled when a distribution by that field is first asked for;
- `rules`: `key_a` a search term (`r:...` rule and row hits, `a:...` action types).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from rulesvc.decisions import ticket_reports
from rulesvc.decisions.ticket_reports import TicketReport
from rulesvc.storage.report_reads import (
    LAST_IN_BUCKET,
    LAST_OF_PERIOD,
    OF_KIND,
    PERIOD_FORMATS,
    approval_rows,
    bucket_at,
    workload_rows,
)

ZONE = "Asia/Shanghai"
SHANGHAI = ZoneInfo(ZONE)
GRACE = timedelta(minutes=10)
"""How long after its end a day is closed."""
CHUNK_DAYS = 8
"""Days rolled in one transaction."""
FACTS = "facts"
RULES = "rules"
FIELD = "field:"
_LOCK = 0x7265706F7274  # the advisory lock of rolling up ("report")


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), SHANGHAI)


def _day(instant: datetime) -> date:
    return instant.astimezone(SHANGHAI).date()


def _at_midnight(instant: datetime) -> bool:
    return instant.astimezone(SHANGHAI).timetz().replace(tzinfo=None) == time()


def closed_before(now: datetime) -> date:
    """The first day not closed at `now` (every day before it is)."""
    return _day(now - GRACE)


@dataclass(frozen=True)
class Split:
    """A period [start, end) read as rolled days [first, last) (from `start`) and live [cut, end)."""

    start: datetime
    end: datetime
    first: date
    last: date

    @property
    def cut(self) -> datetime:
        return midnight(self.last)


def split(start: datetime, end: datetime, now: datetime, tz: str = ZONE) -> Split | None:
    """How [start, end) is read, when `start` is a midnight of `tz` (Asia/Shanghai's only) and at least one
    day before `end` is closed."""
    if tz != ZONE or not _at_midnight(start):
        return None
    first, last = _day(start), min(closed_before(now), _day(end))
    return Split(start, end, first, last) if first < last else None


# -- rolling up -------------------------------------------------------------------------------------------


def _day_sql(column: str) -> str:
    return f"({column} AT TIME ZONE '{ZONE}')::date"


_BIN = (
    "CASE WHEN stay_seconds > 0 THEN floor(stay_seconds / power(2::float8, floor(ln(stay_seconds) / ln(2)) - 6))"
    " * power(2::float8, floor(ln(stay_seconds) / ln(2)) - 6) ELSE stay_seconds END"
)
_INSERT = (
    "INSERT INTO report_rollups (day, part, since_day, kind, occ_day, next_occ_day, auto_day, auto_occ_day,"
    " key_a, key_b, bin, n, total, top)"
)
_OWN = f"""
p AS MATERIALIZED (
    SELECT {_day_sql("decided_at")} AS day, * FROM decision_facts
    WHERE decided_at >= :lo AND decided_at < :hi
), n AS MATERIALIZED (
    SELECT {_day_sql("next_decided_at")} AS day, {_day_sql("decided_at")} AS since_day, * FROM decision_facts
    WHERE next_decided_at >= :lo AND next_decided_at < :hi
)"""
_ROLL_FACTS = f"""
WITH {_OWN}
{_INSERT}
SELECT day, 'approvals', NULL::date, kind, {_day_sql("occurred_at")}, NULL::date, {_day_sql("auto_decided_at")},
       {_day_sql("auto_occurred_at")}, NULL, NULL, NULL::float8, count(*), coalesce(sum(amount), 0), NULL::float8
FROM p WHERE day = ANY(:days) GROUP BY 1, 4, 5, 7, 8
UNION ALL
SELECT day, 'approvals-', since_day, kind, {_day_sql("occurred_at")}, {_day_sql("next_occurred_at")},
       {_day_sql("auto_decided_at")}, {_day_sql("auto_occurred_at")}, NULL, NULL, NULL, count(*),
       coalesce(sum(amount), 0), NULL
FROM n WHERE day = ANY(:days) GROUP BY 1, 3, 4, 5, 6, 7, 8
UNION ALL
SELECT day, 'stays', NULL, kind, NULL, NULL, NULL, NULL, left_stage, NULL, {_BIN}, count(stay_seconds),
       sum(stay_seconds)::numeric, max(stay_seconds)
FROM p WHERE day = ANY(:days) AND left_stage IS NOT NULL GROUP BY 1, 4, 9, 11
UNION ALL
SELECT day, 'open', NULL, kind, NULL, NULL, NULL, NULL, stage, NULL, NULL, count(*), NULL, NULL
FROM p WHERE day = ANY(:days) AND stage IS NOT NULL GROUP BY 1, 4, 9
UNION ALL
SELECT day, 'open-', since_day, kind, NULL, NULL, NULL, NULL, stage, NULL, NULL, count(*), NULL, NULL
FROM n WHERE day = ANY(:days) AND stage IS NOT NULL GROUP BY 1, 3, 4, 9
UNION ALL
SELECT day, 'workload', NULL, NULL, NULL, NULL, NULL, NULL, routed, owner, NULL, count(*),
       sum(extract(epoch FROM occurred_at - first_occurred_at)), NULL
FROM p WHERE day = ANY(:days) GROUP BY 1, 9, 10
UNION ALL
SELECT day, 'workload-', since_day, NULL, NULL, NULL, NULL, NULL, routed, owner, NULL, count(*),
       sum(extract(epoch FROM occurred_at - first_occurred_at)), NULL
FROM n WHERE day = ANY(:days) GROUP BY 1, 3, 9, 10
"""
_ROLL_FIELD = f"""
WITH {_OWN}
{_INSERT}
SELECT day, :part, NULL::date, kind, {_day_sql("occurred_at")}, NULL::date, NULL::date, NULL::date,
       fields #>> CAST(:path AS text[]), NULL, NULL::float8, count(*), NULL::numeric, NULL::float8
FROM p WHERE day = ANY(:days) AND fields #>> CAST(:path AS text[]) IS NOT NULL GROUP BY 1, 4, 5, 9
UNION ALL
SELECT day, :part || '-', since_day, kind, {_day_sql("occurred_at")}, {_day_sql("next_occurred_at")}, NULL, NULL,
       fields #>> CAST(:path AS text[]), NULL, NULL, count(*), NULL, NULL
FROM n WHERE day = ANY(:days) AND fields #>> CAST(:path AS text[]) IS NOT NULL GROUP BY 1, 3, 4, 5, 6, 9
"""
# every distinct term (a loose index scan of the primary key: a few hundred terms), then each term's entries
# of the days by the same key
_ROLL_RULES = f"""
WITH RECURSIVE t(term) AS (
    (SELECT term FROM decision_terms ORDER BY term LIMIT 1)
    UNION ALL
    SELECT (SELECT d.term FROM decision_terms d WHERE d.term > t.term ORDER BY d.term LIMIT 1)
    FROM t WHERE t.term IS NOT NULL
)
{_INSERT}
SELECT {_day_sql("x.decided_at")}, 'rules', NULL, NULL, NULL, NULL, NULL, NULL, t.term, NULL, NULL, count(*),
       NULL, NULL
FROM t CROSS JOIN LATERAL (
    SELECT decided_at FROM decision_terms d WHERE d.term = t.term AND d.decided_at >= :lo AND d.decided_at < :hi
) x
WHERE t.term IS NOT NULL AND {_day_sql("x.decided_at")} = ANY(:days)
GROUP BY 1, 9
"""


def _missing(conn: Connection, part: str, first: date, last: date) -> list[date]:
    stored = set(
        conn.execute(
            text("SELECT day FROM report_rollup_days WHERE part = :part AND day >= :first AND day < :last"),
            {"part": part, "first": first, "last": last},
        ).scalars()
    )
    days = (first + timedelta(days=i) for i in range((last - first).days))
    return [day for day in days if day not in stored]


def _roll(conn: Connection, part: str, days: list[date]) -> None:
    span = {"lo": midnight(days[0]), "hi": midnight(days[-1] + timedelta(days=1)), "days": days}
    if part == FACTS:
        conn.execute(text(_ROLL_FACTS), span)
    elif part == RULES:
        conn.execute(text(_ROLL_RULES), span)
    else:
        conn.execute(text(_ROLL_FIELD), {**span, "part": part, "path": part[len(FIELD) :].split(".")})
    conn.execute(
        text(
            "INSERT INTO report_rollup_days (day, part) SELECT unnest(CAST(:days AS date[])), :part"
            " ON CONFLICT DO NOTHING"
        ),
        {"days": days, "part": part},
    )


def ensure(engine: Engine, part: str, first: date, last: date) -> int:
    """Roll up the days [first, last) of `part` not stored yet (closed days only); returns how many were."""
    with engine.connect() as conn:
        missing = _missing(conn, part, first, last)
    return sum(
        _roll_chunk(engine, part, missing[i : i + CHUNK_DAYS]) for i in range(0, len(missing), CHUNK_DAYS)
    )


def rolled_until(engine: Engine, part: str, first: date, last: date) -> date:
    """Roll up the days of [first, last) of `part` not stored yet (closed days only) when they are a few
    (`CHUNK_DAYS`) and return `last`; else roll only the oldest (which makes the part known to the worker,
    `roll_closed`, that rolls the rest) and return `first`: the report reads the facts of its whole period
    rather than wait (or read the rows of many days crossing into the facts read)."""
    with engine.connect() as conn:
        missing = _missing(conn, part, first, last)
    if len(missing) <= CHUNK_DAYS:
        if missing:
            _roll_chunk(engine, part, missing)
        return last
    _roll_chunk(engine, part, missing[:1])
    return first


def _roll_chunk(engine: Engine, part: str, chunk: list[date]) -> int:
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        still = set(_missing(conn, part, chunk[0], chunk[-1] + timedelta(days=1)))
        todo = [day for day in chunk if day in still]
        if todo:
            _roll(conn, part, todo)
    return len(todo)


def late_days(decided: Sequence[datetime], now: datetime) -> list[date]:
    """The closed days among the days of these decision times (their roll-ups, if any, are dropped by
    `decision_writes.write_prepared` in the decisions' transaction)."""
    closed = closed_before(now)
    return sorted({day for day in map(_day, decided) if day < closed})


def roll_closed(engine: Engine, now: datetime, fields: Sequence[str] = ("kind",)) -> int:
    """Roll up every closed day not stored yet, from the first decision's: the facts, rule and row hits,
    the distributions by `fields` and by every field already rolled up (the worker's job, so that no
    report waits for them). Returns the days rolled (of all parts)."""
    with engine.connect() as conn:
        oldest = conn.execute(text("SELECT min(decided_at) FROM decisions")).scalar()
        rolled = conn.execute(
            text("SELECT DISTINCT part FROM report_rollup_days WHERE part LIKE :fields"),
            {"fields": FIELD + "%"},
        ).scalars()
        parts = [FACTS, RULES, *dict.fromkeys([*(FIELD + f for f in fields), *rolled])]
    if oldest is None:
        return 0
    first, last = _day(oldest), closed_before(now)
    return sum(ensure(engine, part, first, last) for part in parts) if first < last else 0


# -- reading ----------------------------------------------------------------------------------------------


def _bucket_day(column: str) -> str:
    return f"to_char(CAST({column} AS timestamp), :fmt)"


_ROLLED = "day >= :first AND day < :last"
_SUPERSEDED = "since_day >= :first AND since_day < :last AND day < :last"
_LIVE = "decided_at >= :cut AND decided_at < :end"
_CROSSING = (
    "next_decided_at >= :cut AND next_decided_at < :end AND decided_at >= :start AND decided_at < :cut"
)
"""Rows of rolled days whose next decision is of a live one."""
_SAME_BUCKET = f"{bucket_at('next_occurred_at')} = {bucket_at('occurred_at')}"


def _params(asked: TicketReport, span: Split) -> dict[str, Any]:
    return {
        "start": span.start,
        "end": span.end,
        "cut": span.cut,
        "first": span.first,
        "last": span.last,
        "tz": asked.tz,
        "fmt": PERIOD_FORMATS[asked.period],
        "kind": asked.kind,
    }


def _auto_day(occ: str) -> str:
    return f"(auto_day >= :first AND {_bucket_day('auto_occ_day')} = {_bucket_day(occ)})"


_AUTO_AT = f"coalesce(auto_decided_at >= :start AND {bucket_at('auto_occurred_at')} = {bucket_at('occurred_at')}, false)"
_APPROVALS = f"""
SELECT kind, bucket, sum(n), sum(a), sum(amount), sum(auto_amount) FROM (
    SELECT kind, {_bucket_day("occ_day")} AS bucket, n, CASE WHEN {_auto_day("occ_day")} THEN n ELSE 0 END AS a,
           total AS amount, CASE WHEN {_auto_day("occ_day")} THEN total ELSE 0 END AS auto_amount
    FROM report_rollups WHERE part = 'approvals' AND {_ROLLED} AND {OF_KIND}
    UNION ALL
    SELECT kind, {_bucket_day("occ_day")}, -n, CASE WHEN {_auto_day("occ_day")} THEN -n ELSE 0 END,
           -total, CASE WHEN {_auto_day("occ_day")} THEN -total ELSE 0 END
    FROM report_rollups WHERE part = 'approvals-' AND {_SUPERSEDED} AND {OF_KIND}
      AND {_bucket_day("next_occ_day")} = {_bucket_day("occ_day")}
    UNION ALL
    SELECT kind, {bucket_at("occurred_at")}, 1, CASE WHEN {_AUTO_AT} THEN 1 ELSE 0 END,
           coalesce(amount, 0), CASE WHEN {_AUTO_AT} THEN coalesce(amount, 0) ELSE 0 END
    FROM decision_facts WHERE {_LIVE} AND {OF_KIND} AND {LAST_IN_BUCKET}
    UNION ALL
    SELECT kind, {bucket_at("occurred_at")}, -1, CASE WHEN {_AUTO_AT} THEN -1 ELSE 0 END,
           -coalesce(amount, 0), CASE WHEN {_AUTO_AT} THEN -coalesce(amount, 0) ELSE 0 END
    FROM decision_facts WHERE {_CROSSING} AND {OF_KIND} AND {_SAME_BUCKET}
) x GROUP BY 1, 2 HAVING sum(n) > 0
"""
_VALUE = "fields #>> CAST(:path AS text[])"
_DISTRIBUTION = f"""
SELECT bucket, value, sum(n) FROM (
    SELECT {_bucket_day("occ_day")} AS bucket, key_a AS value, n
    FROM report_rollups WHERE part = :part AND {_ROLLED} AND {OF_KIND}
    UNION ALL
    SELECT {_bucket_day("occ_day")}, key_a, -n
    FROM report_rollups WHERE part = :part || '-' AND {_SUPERSEDED} AND {OF_KIND}
      AND {_bucket_day("next_occ_day")} = {_bucket_day("occ_day")}
    UNION ALL
    SELECT {bucket_at("occurred_at")}, {_VALUE}, 1
    FROM decision_facts WHERE {_LIVE} AND {OF_KIND} AND {LAST_IN_BUCKET} AND {_VALUE} IS NOT NULL
    UNION ALL
    SELECT {bucket_at("occurred_at")}, {_VALUE}, -1
    FROM decision_facts WHERE {_CROSSING} AND {OF_KIND} AND {_SAME_BUCKET} AND {_VALUE} IS NOT NULL
) x GROUP BY 1, 2 HAVING sum(n) > 0
"""
_LIVE_BIN = _BIN
_STAYS = f"""
SELECT kind, key_a, bin, sum(n), sum(total), max(top)
FROM report_rollups WHERE part = 'stays' AND {_ROLLED} AND {OF_KIND} GROUP BY 1, 2, 3
UNION ALL
SELECT kind, left_stage, {_LIVE_BIN}, count(stay_seconds), sum(stay_seconds)::numeric, max(stay_seconds)
FROM decision_facts WHERE {_LIVE} AND {OF_KIND} AND left_stage IS NOT NULL GROUP BY 1, 2, 3
"""
_OPEN = f"""
SELECT kind, stage, sum(n) FROM (
    SELECT kind, key_a AS stage, n FROM report_rollups WHERE part = 'open' AND {_ROLLED} AND {OF_KIND}
    UNION ALL
    SELECT kind, key_a, -n FROM report_rollups WHERE part = 'open-' AND {_SUPERSEDED} AND {OF_KIND}
    UNION ALL
    SELECT kind, stage, 1 FROM decision_facts
    WHERE {_LIVE} AND {OF_KIND} AND stage IS NOT NULL AND {LAST_OF_PERIOD}
    UNION ALL
    SELECT kind, stage, -1 FROM decision_facts WHERE {_CROSSING} AND {OF_KIND} AND stage IS NOT NULL
) x GROUP BY 1, 2 HAVING sum(n) > 0
"""
_HANDLING = "extract(epoch FROM occurred_at - first_occurred_at)"
_WORKLOAD = f"""
SELECT routed, owner, sum(n), sum(total) / sum(n) FROM (
    SELECT key_a AS routed, key_b AS owner, n, total FROM report_rollups WHERE part = 'workload' AND {_ROLLED}
    UNION ALL
    SELECT key_a, key_b, -n, -total FROM report_rollups WHERE part = 'workload-' AND {_SUPERSEDED}
    UNION ALL
    SELECT routed, owner, 1, {_HANDLING} FROM decision_facts WHERE {_LIVE} AND {LAST_OF_PERIOD}
    UNION ALL
    SELECT routed, owner, -1, -{_HANDLING} FROM decision_facts WHERE {_CROSSING}
) x WHERE CAST(:grp AS text) IS NULL OR routed = :grp GROUP BY 1, 2 HAVING sum(n) > 0
"""


def _parts(asked: TicketReport) -> str:
    return FIELD + asked.field if asked.report == "tickets" else FACTS


def rolled_span(engine: Engine, asked: TicketReport, span: Split) -> Split | None:
    """`span` cut where the days its report needs stop being rolled up (after rolling a few: `rolled_until`);
    None when none is."""
    last = rolled_until(engine, _parts(asked), span.first, span.last)
    return replace(span, last=last) if span.first < last else None


def ticket_report(session: Session, asked: TicketReport, span: Split) -> dict[str, Any]:
    """The report as `report_reads.ticket_report` answers it, from the roll-ups of the days of `span`
    (`rolled_span`) and the facts of the rest."""
    params = _params(asked, span)
    start, end, tz, period, kind = asked.start, asked.end, asked.tz, asked.period, asked.kind
    if asked.report == "approvals":
        rows = approval_rows(session.execute(text(_APPROVALS), params).all())
        return ticket_reports.approvals_report(rows, start, end, tz, period, kind)
    if asked.report == "tickets":
        found = session.execute(
            text(_DISTRIBUTION),
            {**params, "part": FIELD + asked.field, "path": asked.field.split(".")},
        ).all()
        spread = [(str(b), str(v), int(n)) for b, v, n in found]
        return ticket_reports.distribution_report(spread, start, end, tz, period, asked.field, kind)
    if asked.report == "workload":
        found = session.execute(text(_WORKLOAD), {**params, "grp": asked.group}).all()
        load = workload_rows(found)
        return ticket_reports.workload_report(load, start, end, tz, asked.group)
    return ticket_reports.stages_report(_stages(session, params), start, end, tz, kind)


def _stages(session: Session, params: dict[str, Any]) -> list[dict[str, Any]]:
    bins: dict[tuple[str, str], list[tuple[float, int, float]]] = {}
    totals: dict[tuple[str, str], list[Any]] = {}
    for k, stage, where, n, total, top in session.execute(text(_STAYS), params).all():
        figures = totals.setdefault((k, stage), [0, Decimal(0)])
        figures[0] += int(n)
        figures[1] += Decimal(total or 0)
        if n:
            bins.setdefault((k, stage), []).append((float(where), int(n), float(top)))
    still = {(k, stage): int(n) for k, stage, n in session.execute(text(_OPEN), params).all()}
    rows = []
    for key in set(totals) | set(still):
        count, total = totals.get(key, [0, Decimal(0)])
        rows.append(
            {
                "kind": key[0],
                "stage": key[1],
                "count": count,
                "avg_seconds": round(float(total) / count, 3) if count else None,
                "p90_seconds": _p90(bins.get(key, []), count) if count else None,
                "open": still.get(key, 0),
            }
        )
    return rows


def _p90(bins: list[tuple[float, int, float]], count: int) -> float:
    """The longest stay of the bucket holding the nearest-rank 90th percentile."""
    merged: dict[float, list[Any]] = {}
    for where, n, top in bins:
        figures = merged.setdefault(where, [0, top])
        figures[0] += n
        figures[1] = max(figures[1], top)
    rank, seen = max(1, math.ceil(0.9 * count)), 0
    for where in sorted(merged):
        seen += merged[where][0]
        if seen >= rank:
            return round(float(merged[where][1]), 3)
    return round(float(max(top for _, top in merged.values())), 3)


def rolled_days(start: datetime, end: datetime, now: datetime) -> tuple[date, date] | None:
    """The closed days [first, last) wholly in [start, end), if any (rule hits: any period)."""
    first = _day(start) + timedelta(days=0 if _at_midnight(start) else 1)
    last = min(closed_before(now), _day(end))
    return (first, last) if first < last else None


_TERMS = """
SELECT key_a, sum(n) FROM report_rollups
WHERE part = 'rules' AND day >= :first AND day < :last AND key_a = ANY(:terms) GROUP BY 1
"""


def term_counts(session: Session, terms: Sequence[str], first: date, last: date) -> dict[str, int]:
    """The entries of these terms in the rolled days [first, last) (`rolled_until`)."""
    found = session.execute(text(_TERMS), {"first": first, "last": last, "terms": list(terms)}).all()
    return {str(term): int(n) for term, n in found}
