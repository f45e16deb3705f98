"""Long stress tests of the durable_rules adapter (docs/engine.md #2, #4): 200,000 evaluations, each checked
against an independent model, so that a lost, duplicated or cross-wired firing fails the test."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from rulesvc.engine.durable import DurableNetwork, FactPattern, Firing, NetworkRule, compile_network

pytestmark = pytest.mark.slow

Facts = Mapping[str, Mapping[str, Any]]
EVALUATIONS = 200_000
THREADS = 4
THREADED = 40_000  # of EVALUATIONS, spread over THREADS threads


def _rule(
    name: str, salience: int, *patterns: FactPattern, guard: Any = None, fire: Any = None
) -> NetworkRule:
    return NetworkRule(name, salience, patterns, guard or (lambda _: True), fire or (lambda _: ()))


def _flag(f: Facts) -> Sequence[Mapping[str, Any]]:
    return ({"_t": "flag", "n": f["m"]["n"]},)


def _review(f: Facts) -> Sequence[Mapping[str, Any]]:
    return ({"_t": "review", "n": f["f"]["n"]},)


RULES = [
    _rule("any", 0, FactPattern("m", "input")),
    _rule("from-flag", 0, FactPattern("f", "flag"), fire=_review),
    _rule(
        "large",
        10,
        FactPattern("m", "input", {"$gte": {"amount": 10_000}}),
        guard=lambda f: f["m"]["amount"] >= Decimal(10_000),
        fire=_flag,
    ),
    _rule("small", 1, FactPattern("m", "input", {"$lt": {"amount": 100}})),
    _rule("flagged", 5, FactPattern("m", "input"), FactPattern("f", "flag"), guard=lambda f: True),
    _rule("review", 0, FactPattern("r", "review")),
]


def expected(amount: Decimal) -> list[str]:
    """The model: wave 1 in salience order, then the chain flag -> review."""
    first = (["large"] if amount >= 10_000 else []) + (["small"] if amount < 100 else []) + ["any"]
    return first + (["flagged", "from-flag", "review"] if amount >= 10_000 else [])


def check(n: int, fact: Mapping[str, Any], firings: list[Firing]) -> None:
    names = [f.rule for f in firings]
    assert names == expected(fact["amount"]), (n, names)
    for firing in firings:
        for bound in firing.facts.values():
            assert bound is fact or (bound["_t"] in ("flag", "review") and bound["n"] == n), (n, firing)


def amount_of(n: int) -> Decimal:
    return Decimal(n % 20_011) + Decimal("0.5") * (n % 2)


def test_two_hundred_thousand_evaluations_lose_and_duplicate_nothing() -> None:
    network = compile_network("stress-200k", RULES)
    started = time.perf_counter()
    sequential = EVALUATIONS - THREADED
    fired = 0
    for n in range(sequential):
        fact = {"_t": "input", "n": n, "amount": amount_of(n), "nested": {"ignored": [n]}}
        firings = network.run([fact])
        check(n, fact, firings)
        fired += len(firings)

    errors: list[BaseException] = []
    counts = [0] * THREADS

    def worker(t: int) -> None:
        try:
            for n in range(sequential + t, EVALUATIONS, THREADS):
                fact = {"_t": "input", "n": n, "amount": amount_of(n)}
                firings = network.run([fact])
                check(n, fact, firings)
                counts[t] += len(firings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total = fired + sum(counts)
    assert total == sum(len(expected(amount_of(n))) for n in range(EVALUATIONS))
    elapsed = time.perf_counter() - started
    print(
        f"\n{EVALUATIONS} evaluations, {total} firings in {elapsed:.1f} s ({elapsed / EVALUATIONS * 1e6:.0f} µs each)"
    )


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def test_memory_is_flat_over_thirty_thousand_runs_of_a_partitioned_network() -> None:
    rules = [
        _rule(f"r{i}", i % 5, FactPattern("m", "input", {"$lte": {"amount": float(i)}}), fire=lambda _: ())
        for i in range(300)
    ]
    network = DurableNetwork("stress-memory", rules, partition_size=100)
    assert len(network._partitions) >= 6
    for n in range(2_000):
        network.run([{"_t": "input", "amount": 290 + n % 20}])
    gc.collect()
    before = _rss_kib()
    for n in range(30_000):
        amount = 290 + n % 20  # 0..10 of the 300 rules fire; every partition gets a session
        assert len(network.run([{"_t": "input", "amount": amount}])) == max(0, 300 - amount)
    gc.collect()
    assert _rss_kib() - before < 8_192
