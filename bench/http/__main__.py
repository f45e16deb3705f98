"""`python -m bench.http [--seconds 10] [--connections 32] [--workers 2] [--backends sqlite,postgresql]`

Starts, one after another and with the same uvicorn settings (workers, uvloop, httptools):
1. a bare FastAPI endpoint returning a constant (the baseline, measured in the same run),
2. an endpoint that only evaluates the event with the shipped rulesets (`bench/http/engine_only.py`: the
   ceiling evaluation sets, nothing stored), and the same after reading the body as ingest does (exact
   numbers, ticket checked against its kind): their ratio is what validation costs (target: ≤ 15 % of the
   evaluate-only throughput; also measured in process, as CPU per body),
3. `rulesvc serve` on SQLite, 4. `rulesvc serve` on PostgreSQL (a scratch database, dropped afterwards),
drives each with `connections` concurrent keep-alive connections POSTing distinct events (loan, complaint,
expense: rulesets evaluated, decision + actions + audit entry persisted), and prints req/s, p50, p99 and
the ratios against the bare endpoint. Targets: ≥ 0.4× the bare req/s, p99 ≤ 2.5× the bare p99.

`--facts` measures instead what the `decision_facts` row written with each decision costs (bench/README.md
"Decision facts: the write-path cost"): `rulesvc serve` on PostgreSQL with the facts written and without them
(`bench/http/nofacts/sitecustomize.py`, loaded by the server processes only in this run), alternated
`--rounds` times, a fresh database each run, the load average noted with each figure.

`--tracing` measures instead what tracing costs (bench/README.md "Tracing"): `rulesvc serve` on SQLite with
tracing off and on (spans exported over OTLP/HTTP to a collector stand-in in this process), alternated
`--rounds` times in the same run, and in process the do-nothing spans a decision opens when tracing is off.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.http.load import LoadResult, run_load

REPO = Path(__file__).resolve().parents[2]
TARGET_RPS_RATIO = 0.4
TARGET_P99_RATIO = 2.5
TARGET_VALIDATION_COST = 0.15

BODIES: list[dict[str, Any]] = [
    {
        "event_id": "@ID@",
        "type": "ticket.created",
        "occurred_at": "@NOW@",
        "ticket": {
            "kind": "loan",
            "id": "L-@ID@",
            "region": "上海浦东",
            "amount": 6000000,
            "credit_rating": "AA",
            "owner": "王经理",
            "stage": "初审",
            "customer_name": "张三",
            "mobile": "13812345678",
        },
    },
    {
        "event_id": "@ID@",
        "type": "ticket.created",
        "occurred_at": "@NOW@",
        "ticket": {"kind": "complaint", "id": "C-@ID@", "owner": "李娜", "channel": "电话银行"},
    },
    {
        "event_id": "@ID@",
        "type": "ticket.created",
        "occurred_at": "@NOW@",
        "ticket": {
            "kind": "expense",
            "id": "E-@ID@",
            "expense_type": "差旅费",
            "amount": 4999.99,
            "applicant_rank": "部门经理",
            "applicant": "赵敏",
        },
    },
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rulesvc_command() -> list[str]:
    script = Path(sys.executable).with_name("rulesvc")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from cli import main; main()"]


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    handle = log.open("wb")
    process = subprocess.Popen(
        [*command, "--port", str(port)], env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
            try:
                if (
                    httpx.get(
                        f"{base}/healthz" if "rulesvc" in " ".join(command) else f"{base}/docs", timeout=1
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        handle.close()


@contextmanager
def serving(env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[str, str]]:
    """`rulesvc serve` on `env`'s database, with an ingest key made first: (base URL, key)."""
    key = subprocess.run(
        [*rulesvc_command(), "keys", "create", "--role", "ingest"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[-1]
    with running([*rulesvc_command(), "serve", "--workers", str(workers)], env, log) as base:
        yield base, key


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    admin_url = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"rulesvc_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bodies_now() -> list[dict[str, Any]]:
    """The events as a ticket tool sends them: occurring now, so their SLA timers fall due hours later
    (events from the past would start timers that are already overdue and fire during the run)."""
    now = datetime.now(UTC).isoformat()
    return [{**body, "occurred_at": now} for body in BODIES]


def measure(base: str, key: str, label: str, args: argparse.Namespace) -> LoadResult:
    prefix = f"{label}-{secrets.token_hex(3)}"
    bodies = bodies_now()
    run_load(base, key, bodies, prefix + "w", args.connections, args.warmup, args.tool)  # warm-up
    result = run_load(base, key, bodies, prefix, args.connections, args.seconds, args.tool)
    print(
        f"{label:<22} {result.rps:>9.0f} req/s   p50 {result.p50_ms:7.2f} ms   p99 {result.p99_ms:7.2f} ms"
        f"   errors {result.errors}   ({result.tool}, {result.requests} requests)",
        flush=True,
    )
    return result


def validation_cpu(rounds: int = 5, per_round: int = 3000) -> tuple[float, float]:
    """CPU µs per body of the two reference servers' work without HTTP: parse and evaluate, vs read as ingest
    does (exact numbers, kind schema) and evaluate; interleaved rounds so machine load hits both alike."""
    import orjson

    from rulesvc import exactjson
    from rulesvc.events import event_from_json
    from rulesvc.rulebook import RuleBook
    from rulesvc.validation import read_event

    book = RuleBook.load([REPO / "rulesets"])
    texts = [orjson.dumps({**b, "event_id": f"v{i}"}) for i, b in enumerate(bodies_now())]

    def plain(text: bytes) -> Any:
        return book.evaluate(event_from_json(orjson.loads(text)))

    def checked(text: bytes) -> Any:
        return book.evaluate(read_event(exactjson.loads(text), book.kinds, now=datetime.now(UTC)).event)

    spent = {plain: 0.0, checked: 0.0}
    for _ in range(rounds):
        for fn in spent:
            started = time.process_time()
            for index in range(per_round):
                fn(texts[index % len(texts)])
            spent[fn] += time.process_time() - started
    count = rounds * per_round
    return spent[plain] / count * 1e6, spent[checked] / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--tool", choices=["auto", "wrk", "asyncio"], default="auto")
    parser.add_argument("--tracing", action="store_true", help="tracing off vs on (nothing else)")
    parser.add_argument("--facts", action="store_true", help="decision_facts written vs not (PostgreSQL)")
    parser.add_argument(
        "--in-process-only", action="store_true", help="with --facts: only the in-process part"
    )
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs with --tracing or --facts")
    args = parser.parse_args()

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("RULESVC_")}
    base_env.update(
        PYTHONPATH=str(REPO), RULESVC_RULESETS=str(REPO / "rulesets"), RULESVC_LOG_LEVEL="WARNING"
    )
    work = Path(tempfile.mkdtemp(prefix="rulesvc-bench-"))
    uvicorn_common = [
        "--workers",
        str(args.workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-server-header",
    ]
    print(
        f"{os.cpu_count()} CPUs, {args.workers} workers, {args.connections} connections, "
        f"{args.seconds:.0f}s per target",
        flush=True,
    )
    if args.tracing or args.facts:
        try:
            (tracing_cost if args.tracing else facts_cost)(args, base_env, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        references: dict[str, LoadResult] = {}
        for app, label in (
            ("bench.http.bare:app", "bare FastAPI"),
            ("bench.http.engine_only:app", "evaluate only"),
            ("bench.http.engine_only:validated_app", "validate + evaluate"),
        ):
            command = [sys.executable, "-m", "uvicorn", app, *uvicorn_common]
            with running(command, base_env, work / f"{app.split(':')[0]}.log") as base:
                references[label] = measure(base, "none", label, args)
        bare, engine_only = references["bare FastAPI"], references["evaluate only"]
        validated = references["validate + evaluate"]
        results: dict[str, LoadResult] = {}
        for backend in [b for b in args.backends.split(",") if b]:
            with postgres_database() if backend == "postgresql" else _sqlite(work) as url:
                env = {**base_env, "RULESVC_DATABASE_URL": url}
                with serving(env, args.workers, work / f"{backend}.log") as (base, key):
                    results[backend] = measure(base, key, f"POST /v1/events {backend}", args)
        print()
        print(
            f"evaluate only: req/s ratio {engine_only.rps / bare.rps:5.2f}   p99 ratio "
            f"{engine_only.p99_ms / bare.p99_ms:5.2f}   (the ceiling evaluation alone sets; nothing stored)",
            flush=True,
        )
        cost = 1 - validated.rps / engine_only.rps
        verdict = "PASS" if cost <= TARGET_VALIDATION_COST else "MISS"
        print(
            f"validation: validate + evaluate / evaluate only req/s {validated.rps / engine_only.rps:5.2f}, "
            f"cost {cost:6.1%} of the evaluate-only throughput (target <= {TARGET_VALIDATION_COST:.0%})   "
            f"{verdict}",
            flush=True,
        )
        plain_us, checked_us = validation_cpu()
        print(
            f"validation in process: {plain_us:6.1f} µs CPU per body evaluated, {checked_us:6.1f} µs validated "
            f"and evaluated: cost {checked_us / plain_us - 1:6.1%} (no HTTP; the three bodies, interleaved)",
            flush=True,
        )
        for backend, result in results.items():
            rps_ratio = result.rps / bare.rps
            p99_ratio = result.p99_ms / bare.p99_ms
            verdict = "PASS" if rps_ratio >= TARGET_RPS_RATIO and p99_ratio <= TARGET_P99_RATIO else "MISS"
            print(
                f"{backend:<11} req/s ratio {rps_ratio:5.2f} (target >= {TARGET_RPS_RATIO})   "
                f"p99 ratio {p99_ratio:5.2f} (target <= {TARGET_P99_RATIO})   {verdict}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def tracing_cost(args: argparse.Namespace, base_env: dict[str, str], work: Path) -> None:
    """`rulesvc serve` on SQLite, tracing off then on, `args.rounds` times; then the off path in process."""
    from bench.http.otlp_sink import OtlpSink

    runs: dict[str, list[LoadResult]] = {"off": [], "on": []}
    with OtlpSink() as sink:
        for round_no in range(args.rounds):
            for mode in ("off", "on"):
                url = f"sqlite:///{work / f'tracing-{round_no}-{mode}.db'}"
                env = {**base_env, "RULESVC_DATABASE_URL": url}
                if mode == "on":
                    env["RULESVC_OTLP_ENDPOINT"] = sink.url
                with serving(env, args.workers, work / f"tracing-{mode}.log") as (base, key):
                    runs[mode].append(measure(base, key, f"tracing {mode} #{round_no + 1}", args))
        spans = sink.spans
    off = sum(r.rps for r in runs["off"]) / len(runs["off"])
    on = sum(r.rps for r in runs["on"]) / len(runs["on"])
    decided = sum(r.requests for r in runs["on"])
    print()
    print(
        f"tracing on / off req/s {on / off:5.3f} (mean of {args.rounds} runs each, alternated); "
        f"{spans} spans received by the collector for {decided} measured decisions (warm-ups too)",
        flush=True,
    )
    per_span_ns, per_decision_us = noop_span_cost()
    cpus = os.cpu_count() or 1
    request_us = 1e6 * cpus / off
    print(
        f"tracing off in process: {per_span_ns:5.0f} ns per do-nothing span; the spans and attributes of one "
        f"decision {per_decision_us:6.3f} µs, {per_decision_us / request_us:7.4%} of the "
        f"{request_us:5.0f} µs of machine time a request takes at the off figure ({cpus} CPUs)",
        flush=True,
    )


def facts_cost(args: argparse.Namespace, base_env: dict[str, str], work: Path) -> None:
    """`rulesvc serve` on PostgreSQL with the facts rows written, then without (same code, `observe`
    replaced in the server processes), `args.rounds` times alternated, each on a fresh database.

    Besides req/s and latency (which other work on a shared machine moves by tens of per cent from one run to
    the next) it counts the CPU time the measured requests took: the server's processes and the database's
    backends for the bench database, from /proc, per request (a loaded machine inflates it too, though
    less). Then the same in this process, one decision at a time (`facts_in_process`)."""
    if args.in_process_only:
        facts_in_process(base_env)
        return
    nofacts = str(REPO / "bench" / "http" / "nofacts")
    modes = ("with facts", "without")
    runs: dict[str, list[tuple[LoadResult, float, float, float]]] = {mode: [] for mode in modes}
    for round_no in range(args.rounds):
        for mode in modes if round_no % 2 == 0 else modes[::-1]:
            env = dict(base_env)
            if mode == "without":
                env["PYTHONPATH"] = os.pathsep.join([nofacts, env["PYTHONPATH"]])
            with postgres_database() as url:
                env["RULESVC_DATABASE_URL"] = url
                with serving(env, args.workers, work / "facts.log") as (base, key):
                    label = f"{mode} #{round_no + 1}"
                    bodies = bodies_now()
                    run_load(base, key, bodies, f"{label}w", args.connections, args.warmup, args.tool)
                    before = _cpu_seconds(url)
                    result = run_load(base, key, bodies, label, args.connections, args.seconds, args.tool)
                    server, database = (
                        after - first for after, first in zip(_cpu_seconds(url), before, strict=True)
                    )
                    load = os.getloadavg()[0]
                    if mode == "without":
                        _check_no_facts(url)
                runs[mode].append(
                    (result, server / result.requests * 1e6, database / result.requests * 1e6, load)
                )
                print(
                    f"{label:<14} {result.rps:>6.0f} req/s   p50 {result.p50_ms:7.2f} ms   p99 {result.p99_ms:7.2f}"
                    f" ms   CPU per request: server {runs[mode][-1][1]:6.0f} µs, database {runs[mode][-1][2]:6.0f}"
                    f" µs   load {load:5.2f}   errors {result.errors}",
                    flush=True,
                )

    def median(mode: str, index: int, field: str = "") -> float:
        values = sorted(getattr(r[0], field) if field else r[index] for r in runs[mode])
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2

    on, off = modes
    cpu_on = median(on, 1) + median(on, 2)
    cpu_off = median(off, 1) + median(off, 2)
    loads = [r[3] for mode in modes for r in runs[mode]]
    print()
    print(
        f"facts (medians of {args.rounds} runs each, alternated): req/s {median(on, 0, 'rps'):.0f} with, "
        f"{median(off, 0, 'rps'):.0f} without ({median(on, 0, 'rps') / median(off, 0, 'rps'):5.3f}); "
        f"p50 {median(on, 0, 'p50_ms'):.1f} / {median(off, 0, 'p50_ms'):.1f} ms; "
        f"p99 {median(on, 0, 'p99_ms'):.1f} / {median(off, 0, 'p99_ms'):.1f} ms; load average "
        f"{min(loads):.2f}–{max(loads):.2f}",
        flush=True,
    )
    print(
        f"CPU per request: server {median(on, 1):.0f} / {median(off, 1):.0f} µs, database "
        f"{median(on, 2):.0f} / {median(off, 2):.0f} µs, together {cpu_on:.0f} / {cpu_off:.0f} µs: the facts "
        f"cost {cpu_on / cpu_off - 1:6.1%} of a decision's CPU",
        flush=True,
    )
    facts_in_process(base_env)


def facts_in_process(base_env: dict[str, str], rounds: int = 12, per_round: int = 150) -> None:
    """The facts' cost without HTTP load or other processes in the way: one app in this process on a fresh
    PostgreSQL database, events POSTed one at a time (each decision its own commit: the facts' worst case,
    one latest-row read and one insert per decision), `per_round` with the facts and `per_round` without
    (`observe` swapped in this process), alternated `rounds` times; CPU of this process and of the database
    backend, and wall time, per decision."""
    import json

    from fastapi.testclient import TestClient

    import rulesvc.storage.decision_writes as writes
    from api.app import create_app
    from rulesvc.settings import Settings

    observe = writes.observe
    sides = {"with facts": observe, "without": lambda *_args: None}
    spent: dict[str, list[tuple[float, float, float]]] = {side: [] for side in sides}
    texts = [json.dumps(body, ensure_ascii=False) for body in bodies_now()]
    with postgres_database() as url:
        key = subprocess.run(
            [*rulesvc_command(), "keys", "create", "--role", "ingest"],
            env={**base_env, "RULESVC_DATABASE_URL": url},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
        settings = Settings(
            database_url=url, rulesets=REPO / "rulesets", access_log=False, log_level="WARNING"
        )
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        count = 0
        try:
            with TestClient(create_app(settings)) as client:

                def post(n: int) -> None:
                    nonlocal count
                    for _ in range(n):
                        count += 1
                        body = texts[count % len(texts)].replace("@ID@", f"inproc-{count}")
                        answer = client.post("/v1/events", content=body.encode(), headers=headers)
                        if answer.status_code != 200:
                            raise RuntimeError(answer.text)

                post(per_round)  # warm-up: compiled rulesets, pools, caches
                for round_no in range(rounds):
                    for side in sides if round_no % 2 == 0 else list(sides)[::-1]:
                        writes.observe = sides[side]  # type: ignore[assignment]
                        _, database = _cpu_seconds(url)
                        cpu, wall = time.process_time(), time.perf_counter()
                        post(per_round)
                        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                        database = _cpu_seconds(url)[1] - database
                        spent[side].append(
                            (cpu / per_round * 1e6, database / per_round * 1e6, wall / per_round * 1e6)
                        )
        finally:
            writes.observe = observe

    def median(side: str, index: int) -> float:
        values = sorted(entry[index] for entry in spent[side])
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2

    on, off = sides
    print()
    print(
        f"in process, one decision at a time (medians of {rounds} alternated rounds of {per_round}): "
        f"this process {median(on, 0):.0f} / {median(off, 0):.0f} µs CPU, database backend "
        f"{median(on, 1):.0f} / {median(off, 1):.0f} µs CPU, wall {median(on, 2):.0f} / {median(off, 2):.0f} µs "
        f"per decision (with / without facts): CPU +{(median(on, 0) + median(on, 1)) / (median(off, 0) + median(off, 1)) - 1:.1%}, "
        f"wall +{median(on, 2) / median(off, 2) - 1:.1%}; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )


def _cpu_seconds(url: str) -> tuple[float, float]:
    """CPU seconds (user + system) so far of this process's children (the server and its workers) and of the
    database backends connected to `url`'s database."""
    import psycopg

    tick = os.sysconf("SC_CLK_TCK")

    def stat(pid: int) -> list[str] | None:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        return text[text.rindex(")") + 2 :].split()  # fields from the 3rd on (the name may hold spaces)

    def cpu(fields: list[str]) -> float:
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    mine = {os.getpid()}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in mine} - mine
        grew = bool(found)
        mine |= found
    mine.discard(os.getpid())
    server = sum(cpu(fields) for pid in mine if (fields := stat(pid)) is not None)
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url) as conn:
        backends = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
            )
        ]
    database = sum(cpu(fields) for pid in backends if (fields := stat(pid)) is not None)
    return server, database


def _check_no_facts(url: str) -> None:
    """The "without" side really wrote no facts (else the comparison measures nothing)."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM decision_facts").fetchone()
        decided = conn.execute("SELECT count(*) FROM decisions").fetchone()
    if row is None or row[0] or decided is None or not decided[0]:
        raise RuntimeError(f"facts off wrote {row} facts rows for {decided} decisions")


def noop_span_cost(count: int = 1_000_000) -> tuple[float, float]:
    """ns per `NO_TRACING.span(...)` with one `set`, and µs of what `decide` does with tracing off (three
    spans: decide, evaluate, store; two `set` calls; the `enabled` check), against an empty loop."""
    from rulesvc.tracing import DECIDE, EVALUATE, NO_TRACING, STORE

    tracer = NO_TRACING

    def empty() -> None:
        for _ in range(count):
            pass

    def one_span() -> None:
        for _ in range(count):
            with tracer.span(DECIDE) as span:
                span.set("rulesvc.kind", "loan")

    def decision() -> None:
        for _ in range(count):
            with tracer.span(DECIDE):
                with tracer.span(EVALUATE) as evaluated:
                    evaluated.set("rulesvc.kind", "loan")
                with tracer.span(STORE) as stored:
                    stored.set("rulesvc.created", True)
                if tracer.enabled:
                    pass

    def timed(fn: Any) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        return best

    base = timed(empty)
    return (timed(one_span) - base) / count * 1e9, (timed(decision) - base) / count * 1e6


@contextmanager
def _sqlite(work: Path) -> Iterator[str]:
    yield f"sqlite:///{work / 'bench.db'}"


if __name__ == "__main__":
    main()
