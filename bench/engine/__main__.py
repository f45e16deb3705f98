"""rulesvc engine benchmark: `python -m bench.engine [--quick]` (see bench/README.md)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import zen

from bench.engine import measure, shipped, synthetic
from rulesvc.engine import durable
from rulesvc.rulebook import RuleBook

TARGET_ZEN_RATIO = 0.25
TARGET_P99_US = 1000.0
TARGET_P99_ROWS = 1000
FLAT_RSS_KIB = 1024  # RSS growth tolerated after warm-up (allocator/page granularity)
FLAT_BLOCKS = 256  # live Python blocks tolerated after warm-up (a leak per evaluation: thousands)


@dataclass(frozen=True)
class Profile:
    sizes: tuple[int, ...]
    seconds: float  # per engine and case, split over the rounds
    rounds: int
    warmup: float
    shipped_seconds: float
    durable_checkpoints: tuple[int, int]
    samples: int  # distinct synthetic inputs cycled through
    verify: int  # inputs checked for equal decisions across the three engines


FULL = Profile((10, 100, 1000, 5000), 1.0, 5, 0.3, 1.0, (10_000, 100_000), 1000, 1000)
QUICK = Profile((10, 100, 1000), 0.15, 3, 0.08, 0.15, (1_000, 5_000), 500, 300)


def out(line: str = "") -> None:
    print(line, flush=True)


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_kib(value: int) -> str:
    return f"{value:+,d}"


ROW = "{:<36} {:<7} {:>11} {:>11} {:>8} {:>9} {:>9} {:>8} {:>8}"


def header() -> None:
    out(
        ROW.format(
            "case",
            "engine",
            "decisions/s",
            "per CPU-s",
            "p50 µs",
            "p99 µs",
            "p99cpu µs",
            "ΔRSS KiB",
            "blocks Δ",
        )
    )
    out("-" * 118)


def row(case: str, result: measure.Result) -> None:
    out(
        ROW.format(
            case,
            result.engine,
            fmt_rate(result.per_second),
            fmt_rate(result.per_cpu_second),
            f"{result.p50:.1f}",
            f"{result.p99:.1f}",
            f"{result.p99_cpu:.1f}",
            fmt_kib(result.rss_delta_kib),
            f"{result.blocks_delta:+,d}",
        )
    )


def abort(message: str) -> None:
    out(f"ABORT: {message}")
    sys.exit(2)


# ---- 1. shipped rulesets -----------------------------------------------------------------------------


def bench_shipped(profile: Profile) -> list[tuple[str, measure.Result]]:
    book = RuleBook.load([shipped.RULESETS])
    results = []
    for scenario in shipped.scenarios():
        decision = book.evaluate(scenario.event)
        got = tuple(a.type for a in decision.actions)
        if got != scenario.expected:
            abort(f"{scenario.name}: expected actions {scenario.expected}, got {got}")
        engines = {"rulesvc": (book.evaluate, [scenario.event])}
        result = measure.interleaved(
            engines, seconds=profile.shipped_seconds, rounds=profile.rounds, warmup_seconds=profile.warmup
        )["rulesvc"]
        results.append((scenario.name, result))
        row(scenario.name, result)
    return results


# ---- 2. synthetic routing tables ---------------------------------------------------------------------


@dataclass
class SizeOutcome:
    size: int
    load_seconds: float
    results: dict[str, measure.Result]

    def ratio(self, other: str, cpu: bool = False) -> float:
        ours, theirs = self.results["rulesvc"], self.results[other]
        if cpu:
            return ours.per_cpu_second / theirs.per_cpu_second
        return ours.per_second / theirs.per_second


def load_table_book(table: synthetic.RoutingTable) -> tuple[RuleBook, float]:
    with tempfile.TemporaryDirectory(prefix="rulesvc-bench-") as tmp:
        folder = synthetic.write_folder(Path(tmp), table)
        start = time.perf_counter()
        book = RuleBook.load([folder])
        return book, time.perf_counter() - start


def zen_engine(table: synthetic.RoutingTable) -> Any:
    # The loader is called on EVERY evaluate (measured): hand back one pre-parsed content object.
    content = zen.ZenDecisionContent(json.dumps(synthetic.jdm(table), ensure_ascii=False))
    return zen.ZenEngine({"loader": lambda _key: content})


def verify(book: RuleBook, engine: Any, index: Any, samples: list[synthetic.Sample]) -> None:
    for sample in samples:
        ours = synthetic.groups_of(book.evaluate(sample.event).actions)
        theirs = engine.evaluate("routing", sample.context)["result"].get("group")
        plain = synthetic.plain_decide(index, sample.region, sample.amount)
        if ours != [theirs] or theirs != plain:
            abort(
                f"engines disagree for region={sample.region} amount={sample.amount}: "
                f"rulesvc={ours} zen={theirs!r} plain={plain!r}"
            )


def bench_size(size: int, profile: Profile) -> SizeOutcome:
    table = synthetic.make_table(size)
    book, load_seconds = load_table_book(table)
    engine = zen_engine(table)
    index = synthetic.plain_index(table)
    verify(book, engine, index, synthetic.make_inputs(table, profile.verify, seed=size + 1))
    samples = synthetic.make_inputs(table, profile.samples, seed=size)
    events = [s.event for s in samples]
    contexts = [s.context for s in samples]
    pairs = [(s.region, s.amount) for s in samples]
    decide = synthetic.plain_decide

    def plain(pair: tuple[str, float]) -> str:
        return decide(index, pair[0], pair[1])

    results = measure.interleaved(
        {
            "rulesvc": (book.evaluate, events),
            "zen": (lambda ctx: engine.evaluate("routing", ctx), contexts),
            "python": (plain, pairs),
        },
        seconds=profile.seconds,
        rounds=profile.rounds,
        warmup_seconds=profile.warmup,
    )
    case = f"routing table {size:,} rows"
    for result in results.values():
        row(case, result)
    return SizeOutcome(size, load_seconds, results)


# ---- 3. durable_rules memory flatness ----------------------------------------------------------------


@dataclass
class DurableOutcome:
    checkpoints: tuple[int, int]
    rss: tuple[int, int]
    blocks: tuple[int, int]
    per_second: float
    wrong: int
    live_runs: int


def bench_durable(profile: Profile) -> DurableOutcome:
    with tempfile.TemporaryDirectory(prefix="rulesvc-bench-") as tmp:
        book = RuleBook.load([shipped.loan_approval_folder(Path(tmp))])
    events = shipped.loan_approval_events(200)
    first, last = profile.durable_checkpoints
    wrong = 0
    rss: list[int] = []
    blocks: list[int] = []
    done = 0
    start = time.perf_counter()
    for checkpoint in (first, last):
        while done < checkpoint:
            event, expected = events[done % len(events)]
            if len(book.evaluate(event).actions) != expected:
                wrong += 1  # a lost or duplicated action (docs/engine.md #4)
            done += 1
        gc.collect()
        rss.append(measure.rss_kib())
        blocks.append(sys.getallocatedblocks())
    elapsed = time.perf_counter() - start
    return DurableOutcome(
        (first, last), (rss[0], rss[1]), (blocks[0], blocks[1]), last / elapsed, wrong, len(durable._RUNS)
    )


# ---- main --------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller run (< 20 s): sizes 10/100/1,000 only")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    began = time.perf_counter()
    switches_before = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    out(
        f"rulesvc engine benchmark ({'quick' if args.quick else 'full'}) — Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, zen-engine {version('zen-engine')}, "
        f"durable_rules {version('durable_rules')}; gc enabled"
    )
    out()
    out("1. shipped rulesets (rulesets/), one representative event per scenario")
    header()
    section = time.perf_counter()
    shipped_results = bench_shipped(profile)
    out(f"   ({time.perf_counter() - section:.1f} s)")

    out()
    out("2. synthetic routing tables (hit: first; region equality + amount interval + default row)")
    out(
        f"   same inputs for all engines ({profile.samples} distinct, cycled); decisions verified equal on "
        f"{profile.verify} other inputs per size"
    )
    header()
    section = time.perf_counter()
    outcomes = [bench_size(size, profile) for size in profile.sizes]
    out(f"   ({time.perf_counter() - section:.1f} s)")
    out()
    out("   ratios of throughput: wall clock (per CPU-second in parentheses)")
    out("   size      load s     rulesvc/zen          rulesvc/python")
    for outcome in outcomes:
        out(
            f"   {outcome.size:>5,}   {outcome.load_seconds:>7.2f}   "
            f"{outcome.ratio('zen'):>6.2f}× ({outcome.ratio('zen', cpu=True):.2f}×)   "
            f"{outcome.ratio('python'):>8.3f}× ({outcome.ratio('python', cpu=True):.3f}×)"
        )

    out()
    first, last = profile.durable_checkpoints
    out(
        f"3. durable_rules memory: loan-approval (forward chaining), RSS after {first:,} vs {last:,} evaluations"
    )
    section = time.perf_counter()
    dur = bench_durable(profile)
    growth, block_growth = dur.rss[1] - dur.rss[0], dur.blocks[1] - dur.blocks[0]
    out(
        f"   RSS {dur.rss[0]:,} KiB → {dur.rss[1]:,} KiB ({fmt_kib(growth)} KiB), live blocks "
        f"{fmt_kib(block_growth)}; "
        f"{dur.per_second:,.0f} decisions/s; wrong action counts: {dur.wrong}; live durable runs: {dur.live_runs} "
        f"({time.perf_counter() - section:.1f} s)"
    )

    out()
    out("targets")
    for outcome in outcomes:
        ratio, cpu_ratio = outcome.ratio("zen"), outcome.ratio("zen", cpu=True)
        out(
            f"  ≥ {TARGET_ZEN_RATIO}× zen-engine throughput at {outcome.size:>5,} rows: wall {ratio:.2f}× "
            f"{verdict(ratio >= TARGET_ZEN_RATIO)}; per CPU-second {cpu_ratio:.2f}× "
            f"{verdict(cpu_ratio >= TARGET_ZEN_RATIO)}"
        )
    at_target = [o for o in outcomes if o.size == TARGET_P99_ROWS]
    if at_target:
        result = at_target[0].results["rulesvc"]
        out(
            f"  p99 ≤ {TARGET_P99_US:.0f} µs at {TARGET_P99_ROWS:,} rows: wall {result.p99:.1f} µs "
            f"{verdict(result.p99 <= TARGET_P99_US)}; thread CPU time {result.p99_cpu:.1f} µs "
            f"{verdict(result.p99_cpu <= TARGET_P99_US)}"
        )
    ours = [r for _, r in shipped_results] + [o.results["rulesvc"] for o in outcomes]
    rss_growth = max(r.rss_delta_kib for r in ours)
    blocks = max(r.blocks_delta for r in ours)
    flat = (
        rss_growth <= FLAT_RSS_KIB
        and blocks <= FLAT_BLOCKS
        and growth <= FLAT_RSS_KIB
        and block_growth <= FLAT_BLOCKS
        and dur.wrong == 0
    )
    out(
        f"  memory flat: rulesvc ΔRSS max {fmt_kib(rss_growth)} KiB, live blocks Δ max {fmt_kib(blocks)} "
        f"(sections 1-2); durable {fmt_kib(growth)} KiB, {fmt_kib(block_growth)} blocks over "
        f"{last - first:,} evaluations: {verdict(flat)}"
    )
    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - switches_before
    out(
        f"  load average now {os.getloadavg()[0]:.2f}; {switches:,} involuntary context switches "
        f"(preemption shows in p99 wall, not in p99cpu); total {time.perf_counter() - began:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
