"""Timer scheduler benchmark on PostgreSQL: `python -m bench.timers [--quick] [--processes N]`.

1. Poll cost vs. pending timers: with 10,000 pending (the baseline) and then 1,000,000 pending timers,
   time an idle poll (nothing due: one claim transaction) and the claim query for 100 due tickets
   (EXPLAIN ANALYZE, rolled back). The index on the next point keeps both flat: the ratio is printed.
2. Fire lag: 10,000 timers fall due, spread over a window, while pollers run (in this process, or N
   `python -m scheduler` worker processes); lag = firing time − due time, read back from each fired
   action's `fired_by.late_by`. Target: p99 ≤ 1 s.

A fresh database `bench_timers_<hex>` is created on the server of `--admin-url` and dropped at the end.
`--quick` uses 100,000 pending and 2,000 due timers.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import Engine, text

from rulesvc.decisions.timer_service import TimerService
from rulesvc.rulebook import RuleBook
from rulesvc.settings import Settings
from rulesvc.sla.clock import SystemClock
from rulesvc.storage import SqlStore, make_engine, migrate
from rulesvc.storage.timer_store import SqlTimerStore
from scheduler.poller import TimerPoller

REPO = Path(__file__).resolve().parents[2]
RULE = "complaint-sla/启动首次响应计时"
SNAPSHOT = '{"kind":"complaint","id":"%s","owner":"王五","channel":"电话"}'


def seed(url: str, first: int, last: int, due_sql: str, prefix: str) -> float:
    """Insert tickets and running 2 h complaint timers [first, last] whose next point is `due_sql`
    (an SQL expression of i); returns seconds taken."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tickets (ticket_id, kind, snapshot, group_name, updated_at) "
            f"SELECT '{prefix}' || i, 'complaint', format(%s, '{prefix}' || i), '', now() "
            f"FROM generate_series({first}, {last}) i",
            (SNAPSHOT.replace("%s", "%%s"),),
        )
        conn.execute(
            "INSERT INTO timers (ticket_id, name, generation, calendar, rule, status, started_at, duration_us,"
            " warnings, anchor_at, consumed_us, fired, due_at, next_fire_at, next_point, updated_at)"
            f" SELECT '{prefix}' || i, '首次响应', 1, '24x7', '{RULE}', 'running',"
            f" ({due_sql}) - interval '2 hours', 7200000000, '[]', ({due_sql}) - interval '2 hours', 0, '[]',"
            f" {due_sql}, {due_sql}, 'due', now() FROM generate_series({first}, {last}) i"
        )
        conn.execute("ANALYZE tickets")
        conn.execute("ANALYZE timers")
    return time.perf_counter() - started


def seal(engine: Engine, prefix: str) -> None:
    """Seal the seeded tickets named `prefix`… into the chain, one entry each, as the ticket writer does
    (`rulesvc.storage.ticket_seals`): a ticket whose state no chain entry vouches for is refused, not fired.
    Only tickets that fall due need it (the pending ones are never read)."""
    import sqlalchemy as sa

    from rulesvc.audit.chain import next_entry
    from rulesvc.storage.decision_writes import audit_values
    from rulesvc.storage.tables import AuditHeadRow, AuditRow
    from rulesvc.storage.ticket_seals import KIND_TICKETS_SEALED, SEALED_TIMER_COLUMNS, state_digest
    from rulesvc.storage.timer_tables import TicketRow, TimerRow

    tickets: Any = TicketRow.__table__
    timers: Any = TimerRow.__table__
    heads: Any = AuditHeadRow.__table__
    audit: Any = AuditRow.__table__
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(
                tickets.c.ticket_id,
                tickets.c.kind,
                tickets.c.group_name,
                tickets.c.snapshot,
                tickets.c.timeline,
            ).where(tickets.c.ticket_id.like(prefix + "%"))
        ).all()
        own: dict[str, list[dict[str, Any]]] = {}
        for row in conn.execute(
            sa.select(timers.c.ticket_id, *(timers.c[c] for c in SEALED_TIMER_COLUMNS)).where(
                timers.c.ticket_id.like(prefix + "%")
            )
        ):
            own.setdefault(row[0], []).append(dict(zip(SEALED_TIMER_COLUMNS, row[1:], strict=True)))
        seq, prev = conn.execute(
            sa.select(heads.c.seq, heads.c.hash).where(heads.c.id == 1).with_for_update()
        ).one()
        entries, seals = [], []
        for ticket_id, kind, group, snapshot, timeline in rows:
            digest = state_digest(ticket_id, kind, group, snapshot, timeline, own.get(ticket_id, []))
            at = datetime.now(UTC).isoformat()
            entry = next_entry(seq, prev, at, KIND_TICKETS_SEALED, "", {"tickets": {ticket_id: digest}})
            entries.append(audit_values(entry))
            seals.append({"id": ticket_id, "seq": entry.seq})
            seq, prev = entry.seq, entry.hash
        conn.execute(sa.insert(audit), entries)
        conn.execute(sa.update(heads).where(heads.c.id == 1).values(seq=seq, hash=prev))
        conn.execute(
            sa.update(tickets)
            .where(tickets.c.ticket_id == sa.bindparam("id"))
            .values(seal_seq=sa.bindparam("seq")),
            seals,
        )


def poll_costs(
    url: str, store: SqlTimerStore, service: TimerService, rounds: int
) -> tuple[float, float, int]:
    """(median ms of an idle poll, median ms of the claim query for 100 due tickets, buffers it touched)."""
    for _ in range(3):  # warm-up: connections, statement caches
        service.fire_due(100)
    idle = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = service.fire_due(100)
        idle.append((time.perf_counter() - started) * 1000)
        assert result.tickets == 0
    claim = []
    buffers = 0
    # Every seeded timer falls due 400 days + i seconds from now: a day later, thousands are due.
    statement = store.claim_statement(datetime.now(UTC) + timedelta(days=401), 100)
    with store.engine.connect() as conn:
        sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    with psycopg.connect(url) as conn:
        for _ in range(rounds):
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql).fetchone()
            assert rows is not None
            plan = rows[0][0]
            assert plan["Plan"]["Actual Rows"] == 100, plan
            claim.append(float(plan["Execution Time"]))
            buffers = int(plan["Plan"]["Shared Hit Blocks"]) + int(plan["Plan"]["Shared Read Blocks"])
            conn.rollback()
    return statistics.median(idle), statistics.median(claim), buffers


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(args: argparse.Namespace) -> None:
    pending_big, due_count = (100_000, 2_000) if args.quick else (1_000_000, 10_000)
    baseline = 10_000
    name = f"bench_timers_{secrets.token_hex(4)}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    try:
        migrate(engine)
        book = RuleBook.load([REPO / "rulesets"])
        store = SqlTimerStore(engine)
        service = TimerService(store, book, SystemClock(), Settings().mask_policy())
        far = "now() + interval '400 days' + i * interval '1 second'"
        print(f"database {name}; python {sys.version.split()[0]}; cpus {os.cpu_count()}")

        took = seed(url, 1, baseline, far, "P-")
        print(f"seeded {baseline:,} pending timers in {took:.1f} s")
        idle_small, claim_small, buffers_small = poll_costs(url, store, service, args.rounds)
        took = seed(url, baseline + 1, pending_big, far, "P-")
        print(f"seeded up to {pending_big:,} pending timers in {took:.1f} s")
        idle_big, claim_big, buffers_big = poll_costs(url, store, service, args.rounds)
        print()
        print(f"{'poll time (median)':32} {baseline:>12,} {pending_big:>12,}   ratio")
        print(f"{'idle poll, ms':32} {idle_small:12.2f} {idle_big:12.2f}   {idle_big / idle_small:5.2f}")
        print(
            f"{'claim 100 due tickets, ms':32} {claim_small:12.3f} {claim_big:12.3f}   {claim_big / claim_small:5.2f}"
        )
        print(
            f"{'  buffers it touched':32} {buffers_small:12,} {buffers_big:12,}   {buffers_big / buffers_small:5.2f}"
        )
        print()

        lead, window = 10.0, args.window * (due_count / 10_000)  # time to seal them first
        workers = start_workers(url, args.processes) if args.processes else []
        due_sql = f"now() + interval '{lead} seconds' + (i - 1) * interval '{window / due_count * 1e6} microseconds'"
        seed(url, 1, due_count, due_sql, "D-")
        seal(engine, "D-")
        print(
            f"{due_count:,} timers fall due over {window:.0f} s ({due_count / window:,.0f}/s), "
            f"{pending_big:,} more pending; pollers: {args.processes or 'in-process'}"
        )
        wall = time.perf_counter()
        if workers:
            fired_stats = wait_for_workers(engine, workers, due_count)
        else:
            fired_stats = run_in_process(service, due_count)
        elapsed = time.perf_counter() - wall
        lags = [
            float(orjson.loads(r.action_text)["fired_by"]["late_by"])
            for r in SqlStore(engine).list_actions(0, due_count + 10)
        ]
        assert len(lags) == due_count, (len(lags), due_count)
        print(f"fired {len(lags):,} in {elapsed:.1f} s (including the {lead:.0f} s lead); {fired_stats}")
        print(
            f"fire lag s: p50 {percentile(lags, 0.5):.3f}  p95 {percentile(lags, 0.95):.3f}  "
            f"p99 {percentile(lags, 0.99):.3f}  max {max(lags):.3f}   (target p99 ≤ 1 s)"
        )
        with engine.connect() as conn:
            pending = conn.execute(
                text("SELECT count(*) FROM timers WHERE next_fire_at IS NOT NULL")
            ).scalar()
        print(f"pending after the run: {pending:,}")
    finally:
        engine.dispose()
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_in_process(service: TimerService, due_count: int) -> str:
    poller = TimerPoller(service, batch=100)
    stop = threading.Event()
    polls = 0
    while poller.stats.decisions < due_count and not stop.is_set():
        poller.poll()
        polls += 1
        time.sleep(0.05)
    return f"{polls} polls (50 ms apart), {poller.stats.decisions:,} decisions"


def start_workers(url: str, count: int) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """`count` worker processes, started and polling (their start-up is not part of the lag)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RULESVC_")}
    env.update(
        RULESVC_DATABASE_URL=url,
        RULESVC_RULESETS=str(REPO / "rulesets"),
        RULESVC_TIMER_POLL_INTERVAL="0.05",
        PYTHONPATH=str(REPO),
    )
    workers = []
    for n in range(count):
        log = Path(tempfile.gettempdir()) / f"bench-timers-worker-{os.getpid()}-{n}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, cwd=REPO, stderr=handle)
        workers.append((process, log))
    deadline = time.monotonic() + 120
    while not all("worker started" in log.read_text(errors="replace") for _, log in workers):
        if time.monotonic() > deadline or any(p.poll() is not None for p, _ in workers):
            raise RuntimeError(
                "worker processes did not start:\n" + "\n".join(f.read_text() for _, f in workers)
            )
        time.sleep(0.2)
    return workers


def wait_for_workers(
    engine: Engine, workers: list[tuple[subprocess.Popen[bytes], Path]], due_count: int
) -> str:
    try:
        while True:
            with engine.connect() as conn:
                done = conn.execute(text("SELECT count(*) FROM actions")).scalar() or 0
            if done >= due_count:
                break
            time.sleep(0.2)
    finally:
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, log in workers:
            process.wait(30)
            log.unlink(missing_ok=True)
    return f"{len(workers)} worker processes"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 pending and 2,000 due timers")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--processes", type=int, default=0, help="fire with N worker processes")
    parser.add_argument(
        "--window", type=float, default=40.0, help="seconds over which 10,000 timers fall due"
    )
    parser.add_argument("--rounds", type=int, default=15)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
