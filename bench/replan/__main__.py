"""Re-planning the open timers of a calendar on PostgreSQL: `python -m bench.replan [--timers N] [--batch B]`.

Seeds N tickets (default 100,000) with a running 4-working-hour timer on `cn`, publishes a `cn` version that
makes Saturday 2027-02-20 a make-up working day (every deadline moves from Monday to Saturday), and times:

1. the baseline in the same run: the naive re-plan, one ticket per transaction, each through its journal
   (`CalendarReplanner.journal_only`), on the first 1,000 tickets, extrapolated to N;
2. the re-plan as the service does it (claims of `--batch` tickets, `SKIP LOCKED`, one transaction, one
   record and one chain entry each, timers planned from their rows) on the remaining tickets, run by a
   worker process of its own (as `rulesvc worker`, the compose and helm worker pods), with the ratio to the
   baseline;
3. `POST /v1/events` while it runs: a client posting loan events back to back on other tickets to the API
   (in this process, as `rulesvc serve`); median, p99 and the longest answer, against the same client
   with no re-plan running;
4. the database's share alone: the rows the re-plan wrote (claim records, inputs, search terms and chain
   entries; feed actions; timer and ticket updates) written again by PostgreSQL from themselves, one
   set-based statement per table, no Python and no round trip per row: a lower bound for any re-plan
   storing the same rows.

A fresh database `bench_replan_<hex>` is created on the server of `--admin-url` and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from rulesvc.apikeys import Role
from rulesvc.decisions.replan import CalendarReplanner
from rulesvc.decisions.service import create_api_key
from rulesvc.settings import Settings
from rulesvc.sla.clock import VirtualClock
from rulesvc.storage import make_engine
from rulesvc.storage.bulk import Statements
from rulesvc.storage.decision_writes import chain, chain_head, lock_chain_head, write_entries
from rulesvc.storage.ticket_seals import KIND_TICKETS_SEALED, SEALED_TIMER_COLUMNS, state_digest
from rulesvc.storage.timer_store import SqlTimerStore
from rulesvc.storage.timer_tables import TicketRow
from rulesvc.wiring.lifecycle import build_lifecycle
from scheduler.config import WorkerConfig

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.fromisoformat("2027-02-19T17:00:00+08:00")
CN = (REPO / "rulesets" / "calendars" / "cn.yaml").read_text(encoding="utf-8")
SATURDAY = CN.replace("workdays:\n", 'workdays:\n  2027-02-20: "春节调休"\n', 1)
SNAPSHOT = '{"kind":"loan","id":"%s","stage":"初审","owner":"周八"}'


def seed(url: str, count: int) -> float:
    """`count` tickets with a running 4 h `cn` timer started Friday 16:00, due Monday 11:00 on v1."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tickets (ticket_id, kind, snapshot, group_name, updated_at) "
            "SELECT 'R-' || i, 'loan', format(%s, 'R-' || i), '', now() FROM generate_series(1, %s) i",
            (SNAPSHOT.replace("%s", "%%s"), count),
        )
        conn.execute(
            "INSERT INTO timers (ticket_id, name, generation, calendar, rule, status, started_at, duration_us,"
            " warnings, anchor_at, consumed_us, fired, due_at, next_fire_at, next_point, updated_at,"
            " provisional, calendar_version)"
            " SELECT 'R-' || i, '信贷初审', 1, 'cn', 'loan-sla/启动信贷初审计时', 'running',"
            " '2027-02-19T16:00:00+08:00', 14400000000, '[]', '2027-02-19T16:00:00+08:00', 0, '[]',"
            " '2027-02-22T11:00:00+08:00', '2027-02-22T11:00:00+08:00', 'due', now(), true, 1"
            " FROM generate_series(1, %s) i",
            (count,),
        )
    seal(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE tickets")
        conn.execute("ANALYZE timers")
        conn.execute("ANALYZE audit_log")
    return time.perf_counter() - started


def seal(url: str) -> None:
    """Seal every seeded ticket's state into the chain, one `tickets_sealed` entry per ticket (as a ticket's
    own decision entry seals it in service), so that the re-plan checks each seal as it would in service."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            sql = Statements(conn)
            columns = ", ".join(SEALED_TIMER_COLUMNS)
            timers = {
                row[0]: dict(zip(SEALED_TIMER_COLUMNS, row[1:], strict=True))
                for row in conn.exec_driver_sql(f"SELECT ticket_id, {columns} FROM timers")
            }
            tickets = conn.exec_driver_sql(
                "SELECT ticket_id, kind, group_name, snapshot, timeline FROM tickets ORDER BY ticket_id"
            ).all()
            at = NOW.isoformat()
            notes = [
                (
                    at,
                    KIND_TICKETS_SEALED,
                    "",
                    {"tickets": {tid: state_digest(tid, kind, group, snap, line, [timers[tid]])}},
                )
                for tid, kind, group, snap, line in tickets
            ]
            with sql.round():
                head = lock_chain_head(sql)
            entries = chain(chain_head(head), notes)
            with sql.round():
                write_entries(sql, entries)
                sql.update(
                    TicketRow.__table__,  # type: ignore[arg-type]
                    ["ticket_id"],
                    [{"seal_seq": e.seq, "ticket_id": t[0]} for t, e in zip(tickets, entries, strict=True)],
                )
    finally:
        engine.dispose()


# The rows the re-plan wrote, written again by the server alone (copies under new keys, same sizes and
# indexes; timers and tickets updated in place to the same values), in one transaction rolled back.
CLAIMS = "SELECT decision_id FROM decisions WHERE event_id LIKE 'replan:%'"
FLOOR = (
    (
        "decisions",
        "INSERT INTO decisions SELECT 'f' || left(decision_id, 35), 'floor:' || event_id, ticket_id, decided_at,"
        " record, input_salt, input_digest, chain_seq + 100000000, chain_hash FROM decisions"
        " WHERE event_id LIKE 'replan:%'",
    ),
    (
        "decision_inputs",
        "INSERT INTO decision_inputs SELECT 'f' || left(i.decision_id, 35), i.event, i.occurred_at"
        f" FROM decision_inputs i WHERE i.decision_id IN ({CLAIMS})",
    ),
    (
        "actions",
        "INSERT INTO actions (at, ticket_id, decision_id, action) SELECT at, ticket_id,"
        f" 'f' || left(decision_id, 35), action FROM actions WHERE decision_id IN ({CLAIMS})",
    ),
    (
        "decision_terms",
        "INSERT INTO decision_terms (term, decided_at, chain_seq, decision_id) SELECT t.term, t.decided_at,"
        f" t.chain_seq + 100000000, 'f' || left(t.decision_id, 35) FROM decision_terms t"
        f" WHERE t.decision_id IN ({CLAIMS})",
    ),
    (
        "audit_log",
        "INSERT INTO audit_log SELECT seq + 100000000, at, kind, subject, payload, prev_hash, hash"
        " FROM audit_log WHERE seq IN (SELECT chain_seq FROM decisions WHERE event_id LIKE 'replan:%')",
    ),
    (
        "timers",
        "UPDATE timers SET due_at = due_at, next_fire_at = next_fire_at, next_point = next_point,"
        " provisional = provisional, calendar_version = calendar_version, updated_at = now()"
        " WHERE calendar = 'cn'",
    ),
    ("tickets", "UPDATE tickets SET seal_seq = seal_seq WHERE ticket_id LIKE 'R-%'"),
)


def floor(url: str) -> str:
    """The time PostgreSQL alone takes to write the re-plan's rows again (`FLOOR`)."""
    parts = []
    total = 0.0
    with psycopg.connect(url) as conn:
        for table, statement in FLOOR:
            started = time.perf_counter()
            count = conn.execute(statement).rowcount
            spent = time.perf_counter() - started
            total += spent
            parts.append(f"{table} {count:,} rows {spent:.1f} s")
        conn.rollback()
    return f"{total:.1f} s ({'; '.join(parts)})"


def publish(app: Any, clock: VirtualClock) -> None:
    """v2 of `cn` through the lifecycle, its re-plan left to this bench (timed below)."""
    calendars = app.state.lifecycle.calendars
    calendars.on_published = None
    draft = calendars.create_draft("editor (bench-editor)", "cn", SATURDAY, "2027 春节调休")
    calendars.submit("editor (bench-editor)", "cn", draft.draft_id)
    calendars.approve("approver (bench-approver)", "cn", draft.draft_id)
    calendars.publish("approver (bench-approver)", "cn", draft.draft_id, clock.now())


WORKER_APP = "rulesvc-bench-replan"


class Poster(threading.Thread):
    """Posts loan events back to back and records each answer's time (ms)."""

    def __init__(self, client: TestClient, key: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.client, self.key, self.prefix = client, key, prefix
        self.times: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            index += 1
            body = {
                "event_id": f"{self.prefix}-{index}",
                "type": "ticket.updated",
                "occurred_at": NOW.isoformat(),
                "ticket": {
                    "kind": "loan",
                    "id": f"{self.prefix}-{index}",
                    "stage": "复审",
                    "owner": "周八",
                    "region": "上海浦东",
                    "amount": 1000,
                    "credit_rating": "A",
                },
            }
            started = time.perf_counter()
            response = self.client.post(
                "/v1/events", json=body, headers={"Authorization": f"Bearer {self.key}"}
            )
            self.times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text


class LockWaits(threading.Thread):
    """Samples PostgreSQL every 2 ms for the service's backends waiting on a lock (the chain head, a ticket
    row) and records how long each wait lasted (ms): what the re-plan blocks an event for, apart from the
    CPU the two share. The re-plan's own connections (`application_name` WORKER_APP) are left out."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.waits: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        started: dict[tuple[int, Any], float] = {}
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT pid, query_start FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND application_name <> %s",
                    (WORKER_APP,),
                ).fetchall()
                now = time.perf_counter()
                waiting = {(pid, query_start) for pid, query_start in rows}
                for key in waiting:
                    started.setdefault(key, now)
                for key in [k for k in started if k not in waiting]:
                    self.waits.append((now - started.pop(key)) * 1000)
                time.sleep(0.002)

    def summary(self) -> str:
        waits = sorted(self.waits)
        if not waits:
            return "no event waited on a lock"
        over = sum(1 for w in waits if w > 100)
        return f"{len(waits)} waits, median {statistics.median(waits):.1f} ms, max {waits[-1]:.1f} ms, over 100 ms: {over}"


def latency(poster: Poster) -> str:
    times = sorted(poster.times)
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return f"{len(times)} events, median {statistics.median(times):.1f} ms, p99 {p99:.1f} ms, max {times[-1]:.1f} ms"


def worker(args: argparse.Namespace) -> None:
    """The re-plan as a worker process runs it: waits for a line on stdin, re-plans every open timer on
    `cn` and prints `{"moved", "seconds"}` (a JSON line)."""
    engine = make_engine(args.worker)
    clock = VirtualClock(NOW)
    masking = Settings(database_url=args.worker).mask_policy()
    lifecycle = build_lifecycle(engine, REPO / "rulesets", clock, masking, bootstrap=False)
    try:
        replanner = CalendarReplanner(
            SqlTimerStore(engine),
            lifecycle.book,
            clock,
            masking,
            batch=args.batch,
            lanes=args.lanes,
            yields=False,  # a worker process of its own, as `rulesvc worker`
        )
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.perf_counter()
        result = replanner.replan("cn")
        print(json.dumps({"moved": result.moved, "seconds": time.perf_counter() - started}), flush=True)
    finally:
        lifecycle.close()
        engine.dispose()


def run(args: argparse.Namespace) -> None:
    name = f"bench_replan_{secrets.token_hex(4)}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    clock = VirtualClock(NOW)
    settings = Settings(database_url=url, rulesets=REPO / "rulesets", worker_in_serve=False)
    app = create_app(settings, clock=clock)
    engine = make_engine(url)
    try:
        with TestClient(app) as client:
            key = create_api_key(app.state.runtime.service.keys, frozenset({Role.INGEST}), clock)[1]
            print(f"seeded {args.timers:,} running timers on cn in {seed(url, args.timers):.1f} s")
            publish(app, clock)
            book = app.state.lifecycle.book
            masking = settings.mask_policy()

            idle = Poster(client, key, "idle")
            idle.start()
            time.sleep(args.idle_seconds)
            idle.stop.set()
            idle.join()
            print(f"POST /v1/events, no re-plan:   {latency(idle)}")

            naive = CalendarReplanner(SqlTimerStore(engine), book, clock, masking, batch=1)
            naive.journal_only = True
            sample = min(1_000, args.timers // 10)
            started = time.perf_counter()
            moved = sum(naive.replan("cn", claims=1).moved for _ in range(sample))
            naive_s = time.perf_counter() - started
            per_timer = naive_s / sample
            print(
                f"baseline (one ticket per transaction, through its journal): {sample:,} timers in"
                f" {naive_s:.2f} s = {per_timer * 1000:.2f} ms each → {per_timer * args.timers:.0f} s"
                f" for {args.timers:,}"
            )
            assert moved == sample, moved

            worker_url = f"{url}?application_name={WORKER_APP}"
            command = [
                sys.executable,
                "-m",
                "bench.replan",
                "--worker",
                worker_url,
                "--batch",
                str(args.batch),
            ]
            processes = [
                subprocess.Popen(
                    [*command, "--lanes", str(args.lanes)],
                    cwd=REPO,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(args.workers)
            ]
            for process in processes:
                assert process.stdout is not None
                assert process.stdout.readline().strip() == "ready"
            busy = Poster(client, key, "busy")
            waits = LockWaits(url)
            waits.start()
            busy.start()
            for process in processes:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            done = [json.loads(p.stdout.readline()) for p in processes if p.stdout is not None]
            busy.stop.set()
            busy.join()
            waits.stop.set()
            waits.join()
            for process in processes:
                process.wait(timeout=60)
            elapsed = max(float(d["seconds"]) for d in done)
            left = args.timers - sample
            assert sum(d["moved"] for d in done) == left, (done, left)
            rate = left / elapsed
            print(
                f"re-plan in {args.workers} worker process(es), {args.lanes} lane(s) each, claims of"
                f" {args.batch}: {left:,} timers in {elapsed:.2f} s ({rate:,.0f}/s) → {args.timers / rate:.1f} s"
                f" for {args.timers:,}; {per_timer * rate:.0f}× the baseline"
            )
            print(f"POST /v1/events during it:     {latency(busy)}")
            print(f"events waiting on a lock during it (sampled every 2 ms): {waits.summary()}")
            with psycopg.connect(url) as conn:
                stale = conn.execute(
                    "SELECT count(*) FROM timers WHERE calendar = 'cn' AND calendar_version < 2"
                ).fetchone()
                actions = conn.execute(
                    "SELECT count(*) FROM actions WHERE action LIKE '%reschedule_timer%'"
                ).fetchone()
                claims = conn.execute(CLAIMS.replace("decision_id", "count(*)", 1)).fetchone()
            print(
                f"left on v1: {stale[0] if stale else '?'}; reschedule_timer actions in the feed:"
                f" {actions[0] if actions else '?'}; claim records: {claims[0] if claims else '?'}"
            )
            print(f"the database alone writing the same rows: {floor(url)}")
    finally:
        engine.dispose()
        app.state.lifecycle.close()
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=WorkerConfig.replan_batch)
    parser.add_argument(
        "--lanes",
        type=int,
        default=WorkerConfig.replan_lanes,
        help="concurrent claim loops per worker process",
    )
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes re-planning at once (replicas; default 1)"
    )
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
