"""Timing and memory helpers: interleaved rounds, per-call latencies, RSS and live-block deltas."""

from __future__ import annotations

import gc
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Call = Callable[[Any], Any]


def rss_kib() -> int:
    """Resident set size of this process in KiB (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass
class Result:
    """One engine on one case, accumulated over the rounds."""

    engine: str
    calls: int = 0  # untimed throughput loops
    seconds: float = 0.0  # their wall time
    cpu_seconds: float = 0.0  # their thread CPU time (insensitive to other processes on the machine)
    latencies: array = field(default_factory=lambda: array("q"))  # wall ns per call, timed loops
    cpu_latencies: array = field(default_factory=lambda: array("q"))  # thread CPU ns per call, same calls
    rss_delta_kib: int = 0  # summed over this engine's throughput loops (after warm-up)
    blocks_delta: int = 0  # live Python memory blocks (sys.getallocatedblocks), same loops

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        return self.calls / self.cpu_seconds if self.cpu_seconds else 0.0

    def percentile_us(self, q: float, cpu: bool = False) -> float:
        ordered = sorted(self.cpu_latencies if cpu else self.latencies)
        if not ordered:
            return float("nan")
        rank = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))  # nearest rank
        return ordered[rank] / 1000.0

    @property
    def p50(self) -> float:
        return self.percentile_us(0.50)

    @property
    def p99(self) -> float:
        return self.percentile_us(0.99)

    @property
    def p99_cpu(self) -> float:
        return self.percentile_us(0.99, cpu=True)


def _batch(inputs: Sequence[Any], n: int) -> list[Any]:
    repeats = n // len(inputs) + 1
    return (list(inputs) * repeats)[:n]


def _throughput(fn: Call, batch: list[Any]) -> float:
    return _throughput_both(fn, batch)[0]


def _throughput_both(fn: Call, batch: list[Any]) -> tuple[float, float]:
    """(wall seconds, thread CPU seconds) of one untimed loop."""
    cpu_start = time.thread_time_ns()
    start = time.perf_counter_ns()
    for item in batch:
        fn(item)
    end = time.perf_counter_ns()
    return (end - start) / 1e9, (time.thread_time_ns() - cpu_start) / 1e9


def _timed(fn: Call, batch: list[Any], wall: array, cpu: array) -> None:
    """Wall time (perf_counter_ns) around each call; thread CPU time (thread_time_ns, ~1 µs per read here)
    around that, so preemption by other processes shows in wall but not in CPU time."""
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for position, item in enumerate(batch):
        cpu_start = cpu_clock()
        start = clock()
        fn(item)
        end = clock()
        cpu[position] = cpu_clock() - cpu_start
        wall[position] = end - start


def _clock_overhead(calls: int = 20_000) -> float:
    """Seconds the timed loop adds per call (two perf_counter_ns and two thread_time_ns reads)."""
    wall, cpu = array("q", bytes(8 * calls)), array("q", bytes(8 * calls))
    start = time.perf_counter_ns()
    _timed(_noop, [None] * calls, wall, cpu)
    return (time.perf_counter_ns() - start) / 1e9 / calls


def _noop(_item: Any) -> None:
    return None


def calibrate(fn: Call, inputs: Sequence[Any], warmup_seconds: float, min_calls: int = 200) -> float:
    """Warm up for about `warmup_seconds`; returns the estimated seconds per call."""
    calls, elapsed = 0, 0.0
    while elapsed < warmup_seconds or calls < min_calls:
        n = max(min_calls, calls)
        elapsed += _throughput(fn, _batch(inputs, n))
        calls += n
    return elapsed / calls


def interleaved(
    engines: dict[str, tuple[Call, Sequence[Any]]],
    *,
    seconds: float,
    rounds: int,
    warmup_seconds: float,
    max_calls_per_loop: int = 50_000,
) -> dict[str, Result]:
    """Measure every engine for about `seconds` in total, in `rounds` interleaved rounds (the order rotates),
    so machine noise hits all engines alike. Each round runs an untimed loop (throughput, RSS delta) and a
    loop timed per call with perf_counter_ns (latency percentiles). gc stays enabled throughout."""
    names = list(engines)
    per_call = {name: calibrate(*engines[name], warmup_seconds) for name in names}
    overhead = _clock_overhead()
    results = {name: Result(name) for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            fn, inputs = engines[name]
            n = int(seconds / rounds / 2 / max(per_call[name], 1e-8))
            n = max(50, min(max_calls_per_loop, n))
            batch = _batch(inputs, n)
            timed_n = max(50, int(n * per_call[name] / (per_call[name] + overhead)))  # same time budget
            wall, cpu = array("q", bytes(8 * timed_n)), array("q", bytes(8 * timed_n))
            gc.collect()
            before, blocks = rss_kib(), sys.getallocatedblocks()
            elapsed, cpu_elapsed = _throughput_both(fn, batch)
            gc.collect()
            results[name].blocks_delta += sys.getallocatedblocks() - blocks
            results[name].rss_delta_kib += rss_kib() - before
            results[name].calls += n
            results[name].seconds += elapsed
            results[name].cpu_seconds += cpu_elapsed
            _timed(fn, batch[:timed_n], wall, cpu)
            results[name].latencies.extend(wall)
            results[name].cpu_latencies.extend(cpu)
            del wall, cpu, batch
    return results
