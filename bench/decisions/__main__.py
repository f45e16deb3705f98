"""Decision search on a million stored decisions (PostgreSQL): `python -m bench.decisions [--decisions N]`.

1. A fresh database `bench_decisions_<hex>` (dropped at the end unless `--keep`): the service decides a few
   real events (loans in three regions, an expense claim, a complaint); their stored records are the
   templates of N decisions bulk-loaded in SQL (`generate_series`, not through the API), ids replaced, five
   decisions per ticket, ten seconds apart, with their search terms; then ANALYZE.
2. `GET /v1/decisions` through the real app in process (TestClient; the time is the whole request, so an
   upper bound of server time) as an auditor: by ticket id (target ≤ 50 ms), event id, ruleset, table row,
   action type, a one-hour window, ticket and rule together, the second page of a ruleset through the cursor.
   Median and p95 of `--rounds` requests each, on random tickets and times.
   Every other console page too (as an auditor; the editing pages as an editor).
3. The facts of the seeded decisions (`decision_facts`) filled by the migration's own backfill
   (`rulesvc.storage.decision_facts.backfill`, one statement); the 看板与报表 page and every report route
   over 30 days and the whole span (`--report-rounds`; the service's request deadline is lifted so that a
   slow one is measured rather than answered 503), read from the per-day roll-ups (rolled from scratch
   first: the page's first request, then the worker's job for every other closed day) and, in the same run,
   from the facts of the whole period (`rollups` off: the baseline); beside them, once each, the statements
   the ticket reports were before the facts (reading the records as `jsonb`) over the same 30 days.
4. The baseline in the same run: the same SQL statements with index scans switched off (what the search
   costs without its indexes: a full scan), timed on the server with EXPLAIN ANALYZE, beside the indexed ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.search import Cursor, DecisionQuery, decision_terms
from rulesvc.decisions.service import create_api_key
from rulesvc.settings import Settings
from rulesvc.sla.clock import SystemClock
from rulesvc.storage.decision_facts import backfill
from rulesvc.storage.decision_search import search_statement
from rulesvc.storage.engine import make_engine
from rulesvc.storage.fact_tables import DecisionFactRow
from rulesvc.storage.report_rollups import roll_closed

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 1, tzinfo=UTC)
STEP_SECONDS = 10
PER_TICKET = 5
OCCURRED = "2026-09-30T10:00:00+08:00"
OTHER_PAGES = (
    "/console/",
    "/console/rulesets",
    "/console/rulesets/loan-approval",
    "/console/drafts",
    "/console/cases",
    "/console/calendars",
    "/console/audit",
)
EDITOR_PAGES = (
    "/console/rulesets/loan-approval/edit",
    "/console/rulesets/loan-routing/edit/text",
    "/console/cases/loan-approval/new",
)


def real_events() -> list[dict[str, Any]]:
    loan = {"kind": "loan", "amount": 800000, "credit_rating": "AA", "owner": "王经理", "stage": "初审"}
    loan |= {"customer_name": "张三", "id_card": "110105199001011232", "mobile": "13812345678"}
    tickets = [
        {**loan, "id": "TPL-1", "region": "上海浦东"},
        {**loan, "id": "TPL-2", "region": "北京朝阳", "amount": 6000000},
        {**loan, "id": "TPL-3", "region": "深圳南山", "amount": 20000},
        {"kind": "expense", "id": "TPL-4", "expense_type": "差旅费", "amount": 4999.99}
        | {"applicant_rank": "部门经理", "applicant": "赵敏"},
        {"kind": "complaint", "id": "TPL-5", "owner": "李娜", "channel": "电话"},
    ]
    return [
        {"event_id": f"tpl-{i}", "type": "ticket.created", "occurred_at": OCCURRED, "ticket": ticket}
        for i, ticket in enumerate(tickets, start=1)
    ]


def seed(url: str, templates: list[tuple[str, str, str, str]], count: int, first_seq: int) -> float:
    """`count` decisions made of `templates` (decision id, event id, ticket id, record), in SQL."""
    started = time.perf_counter()
    kinds = len(templates)
    tickets = max(1, count // PER_TICKET)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE tpl (n int, decision_id text, event_id text, ticket_id text, record text)"
        )
        conn.execute("CREATE TEMP TABLE tpl_terms (n int, term text)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO tpl VALUES (%s, %s, %s, %s, %s)", [(n, *t) for n, t in enumerate(templates)]
            )
            cur.executemany(
                "INSERT INTO tpl_terms VALUES (%s, %s)",
                [(n, term) for n, t in enumerate(templates) for term in decision_terms(json.loads(t[3]))],
            )
        # ticket k's decisions are k, k + tickets, ... : spread over the whole period, like real tickets
        conn.execute(
            "CREATE TEMP TABLE gen AS SELECT i, (i %% %s) AS t, 'BT-' || (i %% %s) AS ticket_id,"
            " md5('bench' || i)::uuid::text AS decision_id, 'bench-' || i AS event_id,"
            " %s::timestamptz + i * %s * interval '1 second' AS decided_at, %s + i AS chain_seq"
            " FROM generate_series(1, %s) i",
            (kinds, tickets, START, STEP_SECONDS, first_seq, count),
        )
        conn.execute(
            "INSERT INTO decisions (decision_id, event_id, ticket_id, decided_at, record, input_salt,"
            " input_digest, chain_seq, chain_hash)"
            " SELECT g.decision_id, g.event_id, g.ticket_id, g.decided_at,"
            " replace(replace(replace(p.record, p.decision_id, g.decision_id),"
            " '\"' || p.event_id || '\"', '\"' || g.event_id || '\"'), p.ticket_id, g.ticket_id),"
            " 'bench', md5(g.event_id), g.chain_seq, md5(g.decision_id) || md5(g.event_id)"
            " FROM gen g JOIN tpl p ON p.n = g.t"
        )
        conn.execute(
            "INSERT INTO decision_terms (term, decided_at, chain_seq, decision_id)"
            " SELECT tt.term, g.decided_at, g.chain_seq, g.decision_id FROM gen g JOIN tpl_terms tt ON tt.n = g.t"
        )
        conn.execute("ANALYZE decisions")
        conn.execute("ANALYZE decision_terms")
    return time.perf_counter() - started


def seed_facts(url: str) -> float:
    """The facts of every stored decision, by the migration's backfill (the templates' facts, written with
    them, are made again with the rest)."""
    started = time.perf_counter()
    engine = make_engine(url, statement_timeout=0)
    try:
        with engine.begin() as conn:
            conn.execute(DecisionFactRow.__table__.delete())
            backfill(conn)
    finally:
        engine.dispose()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE decision_facts")
    return time.perf_counter() - started


def timed(fetch: Callable[[], Any], rounds: int) -> tuple[float, float, Any]:
    times, last = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        last = fetch()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], last


def server_ms(url: str, query: DecisionQuery, indexes: bool) -> float:
    """The statement's execution time on the server (EXPLAIN ANALYZE), with or without index scans."""
    compiled = search_statement(query).compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    with psycopg.connect(url) as conn:
        if not indexes:
            conn.execute("SET enable_indexscan = off")
            conn.execute("SET enable_bitmapscan = off")
            conn.execute("SET enable_indexonlyscan = off")
        plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}").fetchone()
    assert plan is not None
    return float(plan[0][0]["Execution Time"])


def run(args: argparse.Namespace) -> None:
    name = f"bench_decisions_{secrets.token_hex(4)}"
    if args.database:
        url, args.keep = args.database, True
    else:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(
        database_url=url,
        rulesets=REPO / "rulesets",
        worker_in_serve=False,
        request_timeout=0,  # measured, not cut at the service's 5 s deadline (a slower dashboard is a 503)
        db_statement_timeout=0,
    )
    app = create_app(settings)
    rng = random.Random(17)
    try:
        with TestClient(app) as client:
            keys = app.state.runtime.service.keys
            ingest = create_api_key(keys, frozenset({Role.INGEST}), SystemClock())[1]
            auditor = {
                "Authorization": f"Bearer {create_api_key(keys, frozenset({Role.AUDITOR}), SystemClock())[1]}"
            }
            editor = {
                "Authorization": f"Bearer {create_api_key(keys, frozenset({Role.EDITOR}), SystemClock())[1]}"
            }
            for body in real_events() if not args.database else []:
                response = client.post("/v1/events", json=body, headers={"Authorization": f"Bearer {ingest}"})
                assert response.status_code == 200, response.text
            with psycopg.connect(url) as conn:
                templates = [
                    (r[0], r[1], r[2], r[3])
                    for r in conn.execute(
                        "SELECT decision_id, event_id, ticket_id, record FROM decisions"
                        " WHERE event_id LIKE 'tpl-%' ORDER BY chain_seq"
                    )
                ]
                head = conn.execute("SELECT seq FROM audit_head").fetchone()
            assert head is not None
            seconds = 0.0 if args.database else seed(url, templates, args.decisions, int(head[0]) + 1000)
            facts_seconds = 0.0 if args.database else seed_facts(url)
            with psycopg.connect(url) as conn:
                size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
                terms = conn.execute("SELECT count(*) FROM decision_terms").fetchone()
            print(
                f"seeded {args.decisions:,} decisions ({terms[0] if terms else '?':,} search terms) in {seconds:.1f} s,"
                f" their facts (the migration's backfill, then VACUUM ANALYZE) in {facts_seconds:.1f} s;"
                f" database {size[0] if size else '?'}"
            )
            tickets = max(1, args.decisions // PER_TICKET)
            span = args.decisions * STEP_SECONDS

            def some_ticket() -> str:
                return f"BT-{rng.randrange(tickets)}"

            def some_hour() -> dict[str, str]:
                at = START + timedelta(seconds=rng.randrange(span - 3600))
                return {"from": at.isoformat(), "to": (at + timedelta(hours=1)).isoformat()}

            row = next(t for t in decision_terms(json.loads(templates[1][3])) if "#" in t)[2:]
            cases: list[
                tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], DecisionQuery]]
            ] = [
                (
                    "ticket_id",
                    lambda: {"ticket_id": some_ticket()},
                    lambda p: DecisionQuery(ticket_id=p["ticket_id"]),
                ),
                (
                    "event_id",
                    lambda: {"event_id": f"bench-{rng.randrange(1, args.decisions)}"},
                    lambda p: DecisionQuery(event_id=p["event_id"]),
                ),
                (
                    "rule=loan-routing",
                    lambda: {"rule": "loan-routing"},
                    lambda p: DecisionQuery(rule=p["rule"]),
                ),
                (f"rule={row}", lambda: {"rule": row}, lambda p: DecisionQuery(rule=p["rule"])),
                (
                    "action_type=assign",
                    lambda: {"action_type": "assign"},
                    lambda p: DecisionQuery(action_type="assign"),
                ),
                (
                    "from/to (1 h)",
                    some_hour,
                    lambda p: DecisionQuery(
                        from_=datetime.fromisoformat(p["from"]), to=datetime.fromisoformat(p["to"])
                    ),
                ),
                (
                    "ticket_id + rule",
                    lambda: {"ticket_id": some_ticket(), "rule": "loan-routing"},
                    lambda p: DecisionQuery(ticket_id=p["ticket_id"], rule=p["rule"]),
                ),
                (
                    "rule + action_type + 1 h",
                    lambda: {"rule": "loan-routing", "action_type": "assign"} | some_hour(),
                    lambda p: DecisionQuery(
                        rule=p["rule"],
                        action_type=p["action_type"],
                        from_=datetime.fromisoformat(p["from"]),
                        to=datetime.fromisoformat(p["to"]),
                    ),
                ),
            ]
            print(
                f"\nGET /v1/decisions (auditor, limit {args.limit}), {args.rounds} requests each, in-process ms:"
            )
            print(
                f"{'filter':34} {'median':>8} {'p95':>8} {'records':>8}   server SQL ms: indexed / no index (ratio)"
            )
            worst = 0.0
            for label, params_of, query_of in cases:
                params = [params_of() for _ in range(args.rounds + 1)]
                feed = iter(params)
                client.get(
                    "/v1/decisions", params={**next(feed), "limit": args.limit}, headers=auditor
                )  # warm-up

                def fetch(feed: Any = feed) -> Any:
                    response = client.get(
                        "/v1/decisions", params={**next(feed), "limit": args.limit}, headers=auditor
                    )
                    assert response.status_code == 200, response.text
                    return response.json()

                median, p95, last = timed(fetch, args.rounds)
                query = query_of(params[-1])
                query = replace(query, limit=args.limit + 1)
                indexed = server_ms(url, query, True)
                scan = server_ms(url, query, False) if args.baseline else float("nan")
                print(
                    f"{label:34} {median:8.1f} {p95:8.1f} {len(last['records']):8}"
                    f"   {indexed:8.2f} / {scan:9.1f} ({scan / indexed:,.0f}×)"
                )
                if label == "ticket_id":
                    worst = p95
            page = client.get(
                "/v1/decisions", params={"rule": "loan-routing", "limit": args.limit}, headers=auditor
            )
            after = page.json()["next_after"]
            median, p95, _ = timed(
                lambda: client.get(
                    "/v1/decisions",
                    params={"rule": "loan-routing", "limit": args.limit, "after": after},
                    headers=auditor,
                ),
                args.rounds,
            )
            assert Cursor.decode(after)
            print(f"{'rule=loan-routing, page 2 (after)':34} {median:8.1f} {p95:8.1f}")
            print(
                f"\nconsole pages (auditor, the editing ones editor; bearer key), {args.rounds} requests each,"
                " in-process ms:"
            )
            pages: list[tuple[str, Callable[[], str]]] = [
                *((path, lambda path=path: path) for path in OTHER_PAGES),
                *((path, lambda path=path: path) for path in EDITOR_PAGES),
                ("/console/decisions (form)", lambda: "/console/decisions"),
                ("/console/decisions?ticket_id=", lambda: f"/console/decisions?ticket_id={some_ticket()}"),
                ("/console/decisions?rule=loan-routing", lambda: "/console/decisions?rule=loan-routing"),
                (
                    "/console/decisions/{id} (为什么)",
                    lambda: f"/console/decisions/{rng.choice(sample_ids)}",
                ),
            ]
            with psycopg.connect(url) as conn:
                sample_ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT decision_id FROM decisions TABLESAMPLE SYSTEM (0.01) LIMIT 50"
                    )
                ] or [templates[0][0]]
            slowest = 0.0
            for label, path_of in pages:
                paths = [path_of() for _ in range(args.rounds + 1)]
                who = editor if label in EDITOR_PAGES else auditor
                client.get(paths[0], headers=who)
                feed_paths = iter(paths[1:])

                def fetch_page(feed: Any = feed_paths, who: dict[str, str] = who) -> Any:
                    response = client.get(next(feed), headers=who)
                    assert response.status_code == 200, response.text
                    return response

                median, p95, _ = timed(fetch_page, args.rounds)
                slowest = max(slowest, p95)
                print(f"{label:40} {median:8.1f} {p95:8.1f}")
            if args.report_rounds:
                slowest = max(slowest, dashboards(client, auditor, url, args))
            print(
                f"\nslowest console page p95 {slowest:.1f} ms (target ≤ 300 ms server time):"
                f" {'met' if slowest <= 300 else 'NOT met'}"
            )
            verdict = "met" if worst <= 50 else "NOT met"
            print(
                f"\nsearch by ticket id: p95 {worst:.1f} ms in process (target ≤ 50 ms server time): {verdict}"
            )
            if args.keep:
                print(f"kept database: {url}")
    finally:
        app.state.lifecycle.close()
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BEFORE = {
    "approvals": """
        WITH f AS ({facts}),
        per_ticket AS (
            SELECT coalesce(t ->> 'kind', '') AS kind, to_char(occ AT TIME ZONE :tz, :fmt) AS bucket, tid,
                   bool_or(acts @> '[{{"type": "auto_approve"}}]') AS auto,
                   (array_agg((t ->> 'amount')::numeric ORDER BY decided_at DESC, chain_seq DESC)
                      FILTER (WHERE jsonb_typeof(t -> 'amount') = 'number'
                              AND (t ->> 'amount')::numeric <> 0))[1] AS amount
            FROM f GROUP BY 1, 2, 3
        )
        SELECT kind, bucket, count(*), count(*) FILTER (WHERE auto),
               coalesce(sum(amount), 0), coalesce(sum(amount) FILTER (WHERE auto), 0)
        FROM per_ticket GROUP BY 1, 2""",
    "tickets?field=kind": """
        WITH f AS ({facts})
        SELECT to_char(occ AT TIME ZONE :tz, :fmt), t #>> '{{kind}}', count(DISTINCT tid)
        FROM f WHERE t #>> '{{kind}}' IS NOT NULL GROUP BY 1, 2""",
}
"""Two of the ticket reports as they were before `decision_facts` (each record read as `jsonb`), the
baseline."""
BEFORE_FACTS = """
    SELECT d.decided_at, d.chain_seq, r ->> 'ticket_id' AS tid, r -> 'event' -> 'ticket' AS t,
           (r -> 'event' ->> 'occurred_at')::timestamptz AS occ, r -> 'actions' AS acts
    FROM (SELECT decided_at, chain_seq, record::jsonb AS r FROM decisions
          WHERE decided_at >= :start AND decided_at < :end OFFSET 0) d
    WHERE jsonb_typeof(r -> 'event' -> 'ticket') = 'object' AND r -> 'event' ->> 'occurred_at' IS NOT NULL
"""


def dashboards(client: TestClient, auditor: dict[str, str], url: str, args: argparse.Namespace) -> float:
    """The 看板与报表 page and every report route over 30 days and the whole span of the seeded decisions
    (ten seconds apart from START: 30 days ≈ 259,000 decisions), then the baseline; returns the page's
    slowest p95."""
    shanghai = timedelta(hours=8)
    month_start, month_end = (
        datetime(2026, 2, 1, tzinfo=UTC) - shanghai,
        datetime(2026, 3, 3, tzinfo=UTC) - shanghai,
    )
    month = {"from": month_start.isoformat(), "to": month_end.isoformat()}
    end = START + timedelta(seconds=args.decisions * STEP_SECONDS + 1)
    # from the midnight (Asia/Shanghai) before the first decision: the reports read rolled-up days from a
    # midnight there (a period starting at another time is read from the facts)
    midnight = datetime(START.year, START.month, START.day, tzinfo=timezone(shanghai))
    whole = {"from": midnight.isoformat(), "to": end.isoformat()}
    days = (end - START).days
    routes: list[tuple[str, dict[str, str]]] = [
        ("approvals", {"period": "month"}),
        ("tickets", {"field": "kind", "period": "week"}),
        ("tickets", {"field": "region", "period": "day"}),
        ("stages", {}),
        ("workload", {}),
        ("sla", {"group_by": "ruleset,group"}),
        ("rules", {}),
        ("late-fires", {}),
    ]
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("/console/reports (30 days)", "/console/reports", {"from": "2026-02-01", "to": "2026-03-03"}),
        (f"/console/reports (all {days} days)", "/console/reports", {k: v[:10] for k, v in whole.items()}),
        ("/v1/reports/timers (24 h)", "/v1/reports/timers", {}),
    ]
    for name, params in routes:
        extra = "".join(f"?{k}={v}" for k, v in params.items() if k == "field")
        cases.append((f"/v1/reports/{name}{extra} (30 days)", f"/v1/reports/{name}", {**month, **params}))
        cases.append(
            (f"/v1/reports/{name}{extra} (all {days} days)", f"/v1/reports/{name}", {**whole, **params})
        )
    store = client.app.state.runtime.service.store  # type: ignore[attr-defined]
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:  # from scratch: none rolled up yet
        conn.execute(sql_text("TRUNCATE report_rollups, report_rollup_days"))
    first_page, _, _ = timed(lambda: client.get(cases[0][1], params=cases[0][2], headers=auditor), 1)
    started = time.perf_counter()
    # the distributions asked for below (by kind and region), as the worker rolls them after a first request
    days = roll_closed(engine, datetime.now(UTC), fields=("kind", "region"))
    rolled = time.perf_counter() - started
    with engine.connect() as conn:
        rows = conn.execute(sql_text("SELECT count(*) FROM report_rollups")).scalar()
    print(
        f"\nroll-ups: the 30-day page's first request (nothing rolled up: the facts read) {first_page:,.0f} ms; then the"
        f" worker's job rolling up every other closed day: {days} day-parts in {rolled:.1f} s;"
        f" {rows:,} roll-up rows in all"
    )
    print(
        f"\ndashboards and reports (auditor), {args.report_rounds} requests each, in-process ms;"
        f" load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}:"
    )
    print(f"{'request':52} {'rolled median':>14} {'p95':>8} {'live median':>12} {'p95':>8} {'ratio':>7}")
    slowest, after = 0.0, dict[str, float]()
    for label, path, params in cases:

        def fetch(path: str = path, params: dict[str, str] = params) -> Any:
            response = client.get(path, params=params, headers=auditor)
            assert response.status_code == 200, response.text
            return response

        figures = []
        for rollups in (True, False):  # the baseline: the facts of the whole period read (as before)
            store.rollups = rollups
            fetch()  # warm-up
            figures.append(timed(fetch, args.report_rounds))
        store.rollups = True
        (median, p95, _), (live, live_p95, _) = figures
        after[label] = median
        if path == "/console/reports":
            slowest = max(slowest, p95)
        print(f"{label:52} {median:14.1f} {p95:8.1f} {live:12.1f} {live_p95:8.1f} {live / median:6.1f}×")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.baseline:
        print(
            "\nbaseline: the statements before decision_facts (records read as jsonb), 30 days, once each, ms"
        )
        bound = {"start": month_start, "end": month_end, "tz": "Asia/Shanghai"}
        with psycopg.connect(url) as conn:
            conn.execute("SET statement_timeout = 0")
            for name, statement in BEFORE.items():
                fmt = "YYYY-MM" if name == "approvals" else 'IYYY-"W"IW'
                sql = statement.format(facts=BEFORE_FACTS).replace(":start", "%(start)s")
                sql = sql.replace(":end", "%(end)s").replace(":tz", "%(tz)s").replace(":fmt", "%(fmt)s")
                started = time.perf_counter()
                conn.execute(sql, {**bound, "fmt": fmt}).fetchall()
                before = (time.perf_counter() - started) * 1000
                now = after[f"/v1/reports/{name} (30 days)"]
                print(
                    f"{'/v1/reports/' + name + ' (30 days)':52} before {before:10.1f}  after {now:8.1f}  ({before / now:,.0f}×)"
                )
    return slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the full scans")
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    parser.add_argument(
        "--report-rounds", type=int, default=10, help="requests per report (0: skip the dashboards)"
    )
    parser.add_argument("--database", help="measure a database kept by --keep (no load; kept)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
