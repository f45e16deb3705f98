"""The durable_rules adapter: the only module that imports durable_rules.

It runs a generic forward-chaining network (`NetworkRule` objects built by a compiler elsewhere) over facts
(dicts with a "_t" type) and knows nothing about our ruleset language. durable_rules 2.0.28 is unmaintained
and has sharp edges (/work/shared/ENGINE-NOTES.md, "#n" below); every one is contained here:

* #1 alpha-network limits. A ruleset "hangs at 512 rules" because one alpha node holds at most 511
  successors (an open-addressed table that loops forever when full); we also measured that one node holds
  at most 255 joins (256 crashes, 257 is error 108) and that a fact may satisfy at most 64 sibling conditions
  at once (error 303 at assert time). Rules are therefore split into several durable rulesets (partitions)
  under those budgets and `run()` iterates the partitions to a fixpoint.
* #2 sessions. One fresh session id per `run()`, deleted in `finally`; concurrent runs are bounded.
  Found here: deleting a session on which no action ever started frees uninitialised memory (segfault), so
  such a session first gets a sentinel fact whose no-op action initialises it.
* #3/#4 background dispatch. Our `Host` subclass never starts durable's `threading.Timer` loops, so actions
  run only inside our own calls; they write to a per-run collector, never to the return value of `post`.
* #5 swallowed exceptions. Actions only record the match (they cannot fail in practice); guard and fire run
  outside durable, so their exceptions propagate as `ActionFailedError`. What durable would still swallow
  is detected through the collector and the state's "exception" key.
* #6 no match / duplicates. We assert through the engine's C entry point, which returns "not handled" as a
  code (a batch assert would raise and strand the actions of the facts that did match); every fact gets a
  unique internal id, so equal facts never collide.
* #7 global names. Every partition is registered once under a name derived from a hash of the key plus a
  generation counter; `compile_network` caches by key. Nothing can be unregistered, so the CALLER MUST use a
  content hash of the ruleset in the key: a changed ruleset under an old key would silently reuse the old
  network, and every distinct key costs memory until the process exits.
* #8 JSON form with "pri": lower pri fires first, ties in declaration order, negative pri fires last
  (measured). pri = global position in (salience desc, declaration order), so durable's own agenda already
  agrees with the order we enforce with an explicit sort.

Facts: durable only sees "_t" plus the top-level fields that some `native` condition mentions, projected
to JSON scalars (Decimal -> float, date/time -> ISO string, None -> null; nested values are dropped);
guard and fire always get the caller's original objects. Floats are written as "1.0e-05" because durable's
parser rejects "1e-05" (found here). Because of this projection a native prefilter must tolerate float
rounding: it is a necessary condition, the guard decides exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Any

import durable_rules_engine as _dre
from durable.engine import Host

from rulesvc.errors import ActionFailedError, EngineError

Facts = Mapping[str, Mapping[str, Any]]

MAX_CONCURRENT_RUNS = 64  # sessions per durable ruleset are capped at 1,024 (#2)
MAX_FACTS_PER_RUN = 10_000  # input + derived; stops a rule that derives its own trigger forever
_MAX_PARTITION = 511  # #1: one alpha node holds at most 511 successors
_STACK_BUDGET = 56  # durable: a fact may satisfy at most 64 sibling alpha conditions (error 303)
_JOIN_BUDGET = 250  # durable: one alpha node feeds at most 255 joins (256 segfaults, 257 is error 108)
_TYPE_BUDGET = 500  # the root alpha node: one successor per fact type, at most 511
_FIELD_BUDGET = 250  # durable rejects facts with more than 255 properties (error 302)
_SENTINEL = "$rulesvc.sentinel"
_RESERVED_FIELDS = frozenset({"id", "sid"})  # durable's fact identity and session keys
_STR = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(frozen=True)
class FactPattern:
    alias: str
    fact_type: str
    native: Mapping[str, Any] | None = None  # durable JSON condition, ANDed with the "_t" test; a prefilter


@dataclass(frozen=True)
class NetworkRule:
    name: str
    salience: int  # higher fires first; ties fire in declaration order
    patterns: tuple[FactPattern, ...]
    guard: Callable[[Facts], bool]
    fire: Callable[[Facts], Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class Firing:
    rule: str
    facts: Facts  # alias -> the caller's original fact object


class _QuietHost(Host):  # type: ignore[misc]
    """A durable Host without the background Timer loops that steal actions from `post` (#3/#4)."""

    def _run(self) -> None:
        return None


class _Run:
    """Per-run collector written by the actions of every partition of one session."""

    __slots__ = ("aborting", "activations", "created", "error", "originals", "poisoned", "started")

    def __init__(self) -> None:
        self.originals: list[Mapping[str, Any]] = []  # internal fact id -> the caller's object
        self.activations: list[tuple[int, tuple[int, ...]]] = []  # (rank, fact ids in pattern order)
        self.created: dict[int, int | None] = {}  # partition -> state handle of its session
        self.started: set[int] = set()  # partitions whose session has run an action (safe to delete)
        self.poisoned: set[int] = set()  # partitions whose session may be half-built (never delete)
        self.error: tuple[int, Exception] | None = None
        self.aborting = False

    def record(self, rank: int, aliases: tuple[str, ...], matched: Mapping[str, Any]) -> None:
        try:
            self.activations.append((rank, tuple(_fact_index(matched[a]) for a in aliases)))
        except Exception as exc:  # durable would swallow it (#5): keep it for run() to raise
            if self.error is None:
                self.error = (rank, exc)


def _fact_index(fact: Mapping[str, Any]) -> int:
    return int(fact["id"])


_HOST_LOCK = threading.Lock()
_HOST: list[Any] = []  # the process's single host (#7: get_host() is a singleton, never rebuilt)
_COMPILE_LOCK = threading.Lock()
_NETWORKS: dict[str, DurableNetwork] = {}
_RUNS: dict[str, _Run] = {}  # session id -> collector, read by actions
_SESSION_IDS = itertools.count(1)
_GENERATIONS = itertools.count(1)
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_RUNS)


def _host() -> Any:
    with _HOST_LOCK:
        if not _HOST:
            _HOST.append(_QuietHost())
        return _HOST[0]


def _agenda_order(activations: list[tuple[int, tuple[int, ...]]]) -> None:
    """Salience desc, declaration order, then fact order: durable's pri already yields this per ruleset."""
    activations.sort()


def _number(value: float | Decimal) -> str | None:
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    text = repr(number)
    return text.replace("e", ".0e") if "e" in text and "." not in text else text  # "1e-05" is error 204


def _encode_scalar(value: Any) -> str | None:
    """JSON text of a top-level fact value as durable can parse it, or None to leave the field out."""
    kind = type(value)
    if kind is str:
        return _STR(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float or kind is Decimal:
        return _number(value)
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, date | time):  # datetime is a date
        return _STR(value.isoformat())
    if isinstance(value, int):  # IntEnum and friends
        return int.__repr__(value)
    if isinstance(value, float | Decimal):
        return _number(value)
    if isinstance(value, str):  # str enums
        return _STR(str.__str__(value))
    return None  # nested dicts, lists and other objects stay invisible to durable


def _plain(node: Any, aliases: frozenset[str], fields: set[str]) -> Any:
    """A JSON copy of a native condition; collects the fact fields it mentions."""
    if isinstance(node, Mapping):
        out = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise EngineError(f"native condition key {key!r} is not a string")
            if key in aliases and isinstance(value, str):
                fields.add(value)  # {"alias": "field"}: a field of another matched fact
            elif not key.startswith("$"):
                fields.add(key)
            out[key] = _plain(value, aliases, fields)
        return out
    if isinstance(node, list | tuple):
        return [_plain(item, aliases, fields) for item in node]
    if isinstance(node, Decimal | float):
        number = math.nan if isinstance(node, Decimal) and not node.is_finite() else float(node)
        if number.is_integer():
            return int(number)  # exact, and durable cannot parse "1e+16"
        if not math.isfinite(number) or "." not in repr(number):  # durable cannot parse "1e-05"
            raise EngineError(f"durable_rules cannot parse the number {node!r} in a native condition")
        return number
    if node is None or isinstance(node, str | int):
        return node
    raise EngineError(f"native condition value {node!r} is not JSON")


def _alpha_cost(node: Any) -> list[int]:
    """Lengths of the terms of a condition in disjunctive normal form: durable builds one alpha path per term."""
    if not isinstance(node, Mapping) or not node:
        return [1]
    if len(node) > 1:
        return _alpha_cost({"$and": [{k: v} for k, v in node.items()]})
    ((key, value),) = node.items()
    if key == "$or" and isinstance(value, list):
        return [n for item in value for n in _alpha_cost(item)]
    if key == "$and" and isinstance(value, list):
        terms = [0]
        for item in value:
            terms = [a + b for a in terms for b in _alpha_cost(item)]
            if len(terms) > _STACK_BUDGET:
                break
        return terms
    return [max(1, len(value)) if key.startswith("$") and isinstance(value, Mapping) else 1]


@dataclass(frozen=True)
class _Partition:
    index: int
    ruleset: Any  # durable.engine.Ruleset
    handle: int  # its durable_rules_engine handle
    types: frozenset[str]


class DurableNetwork:
    """A forward-chaining network over one or more durable rulesets (partitions)."""

    def __init__(self, key: str, rules: Sequence[NetworkRule], *, partition_size: int = 400) -> None:
        if not 1 <= partition_size <= _MAX_PARTITION:
            raise EngineError(f"partition_size must be within 1..{_MAX_PARTITION} (ENGINE-NOTES #1)")
        if len({r.name for r in rules}) != len(rules):
            raise EngineError(f"network {key!r}: rule names are not unique")
        self.key = key
        order = sorted(range(len(rules)), key=lambda i: (-rules[i].salience, i))
        self._ranked = [rules[i] for i in order]  # rank = durable pri = agenda position
        self._aliases = [tuple(p.alias for p in r.patterns) for r in self._ranked]
        fields: set[str] = set()
        conditions: list[list[dict[str, Any]]] = []
        costs: list[dict[str, tuple[int, int]]] = []
        for rule, aliases in zip(self._ranked, self._aliases, strict=True):
            if not rule.patterns or len(set(aliases)) != len(aliases):
                raise EngineError(f"rule {rule.name!r}: needs patterns with distinct aliases")
            if not all(a.isidentifier() for a in aliases):
                raise EngineError(f"rule {rule.name!r}: aliases must be identifiers")
            conds: list[dict[str, Any]] = []
            cost: dict[str, tuple[int, int]] = {}
            for p in rule.patterns:
                native = _plain(p.native, frozenset(aliases), fields) if p.native is not None else None
                conds.append(
                    {p.alias: {"$and": [{"_t": p.fact_type}, native]} if native else {"_t": p.fact_type}}
                )
                stack, joins = cost.get(p.fact_type, (0, 0))
                cost[p.fact_type] = (stack + (sum(_alpha_cost(native)) if native else 0), joins + 1)
            conditions.append(conds)
            costs.append(cost)
        if fields & _RESERVED_FIELDS or len(fields) > _FIELD_BUDGET:
            raise EngineError(f"network {key!r}: native conditions may not use 'id'/'sid' or >250 fields")
        self._fields = tuple((f, _STR(f) + ":") for f in sorted(fields))
        self._partitions = self._register(key, self._split(costs, partition_size), conditions)

    def _split(self, costs: list[dict[str, tuple[int, int]]], size: int) -> list[list[int]]:
        """Consecutive ranks under the rule count and durable's alpha budgets (#1)."""
        groups: list[list[int]] = []
        used: dict[str, tuple[int, int]] = {}  # fact type -> (alpha conditions, joins) in the open group
        for rank, cost in enumerate(costs):
            if any(s > _STACK_BUDGET or j > _JOIN_BUDGET for s, j in cost.values()):
                raise EngineError(f"rule {self._ranked[rank].name!r} is too large for durable_rules")
            merged = {
                t: (used.get(t, (0, 0))[0] + s, used.get(t, (0, 0))[1] + j) for t, (s, j) in cost.items()
            }
            fits = (
                groups
                and len(groups[-1]) < size
                and len(used.keys() | cost.keys()) <= _TYPE_BUDGET
                and all(s <= _STACK_BUDGET and j <= _JOIN_BUDGET for s, j in merged.values())
            )
            if not fits:
                groups.append([])
                used, merged = {}, dict(cost)
            groups[-1].append(rank)
            used.update(merged)
        return groups

    def _register(self, key: str, groups: list[list[int]], conditions: list[list[Any]]) -> list[_Partition]:
        host = _host()
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        generation = next(_GENERATIONS)
        partitions = []
        for index, ranks in enumerate(groups):
            definition: dict[str, Any] = {
                f"r{rank}": {"all": conditions[rank], "pri": rank, "run": self._action(index, rank)}
                for rank in ranks
            }
            definition["sentinel"] = {
                "all": [{"m": {"_t": _SENTINEL}}],
                "pri": len(self._ranked),
                "run": self._action(index, -1),
            }
            name = f"rulesvc_{digest}_{generation}_{index}"
            try:
                host.register_rulesets({name: definition})
                ruleset = host.get_ruleset(name)
            except Exception as exc:
                raise EngineError(
                    f"durable_rules rejected partition {index} of network {key!r}: {exc}"
                ) from exc
            types = frozenset(p.fact_type for rank in ranks for p in self._ranked[rank].patterns)
            partitions.append(_Partition(index, ruleset, ruleset._handle, types))
        return partitions

    def _action(self, partition: int, rank: int) -> Callable[[Any], None]:
        aliases = self._aliases[rank] if rank >= 0 else ()

        def action(c: Any) -> None:  # durable's Closure; c._m avoids alias clashes with its attributes
            run = _RUNS.get(c.s["sid"])
            if run is not None:
                run.started.add(partition)
                if rank >= 0 and not run.aborting:
                    run.record(rank, aliases, c._m)

        return action

    def run(self, facts: Sequence[Mapping[str, Any]]) -> list[Firing]:
        """Fire the network over `facts`; returns the firings (guard returned True) in execution order.

        Evaluation goes in waves: all activations of a wave's facts are collected from every partition, then
        executed in (salience desc, declaration order, fact order); facts derived by fire form the next wave.
        """
        with _SLOTS:  # #2: bounded live sessions
            sid = str(next(_SESSION_IDS))
            run = _RUNS[sid] = _Run()
            try:
                firings = self._evaluate(sid, run, facts)
            except BaseException:
                run.aborting = True
                self._close(sid, run, failed=True)
                raise
            else:
                self._close(sid, run, failed=False)
            finally:
                del _RUNS[sid]
            return firings

    def _evaluate(self, sid: str, run: _Run, facts: Sequence[Mapping[str, Any]]) -> list[Firing]:
        firings: list[Firing] = []
        wave = [self._admit(sid, run, fact, None) for fact in facts]
        while wave:
            for partition in self._partitions:
                self._assert_wave(partition, sid, run, wave)
            activations, run.activations, wave = run.activations, [], []
            _agenda_order(activations)
            for rank, ids in activations:
                rule = self._ranked[rank]
                bound = {alias: run.originals[i] for alias, i in zip(self._aliases[rank], ids, strict=True)}
                try:
                    if not rule.guard(bound):
                        continue
                    derived = rule.fire(bound)
                except Exception as exc:
                    raise ActionFailedError(
                        f"rule {rule.name!r} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                firings.append(Firing(rule.name, bound))
                wave.extend(self._admit(sid, run, fact, rule.name) for fact in derived)
        return firings

    def _admit(self, sid: str, run: _Run, fact: Mapping[str, Any], rule: str | None) -> tuple[str, str]:
        fact_type = fact.get("_t") if isinstance(fact, Mapping) else None
        if not isinstance(fact_type, str):
            what = f"rule {rule!r} derived" if rule else "run() got"
            raise (ActionFailedError if rule else EngineError)(
                f"{what} a fact without a string '_t': {fact!r}"
            )
        if len(run.originals) >= MAX_FACTS_PER_RUN:
            raise EngineError(f"network {self.key!r}: more than {MAX_FACTS_PER_RUN} facts in one run")
        parts = [f'{{"sid":"{sid}","id":"{len(run.originals)}","_t":{_STR(fact_type)}']
        for field, prefix in self._fields:
            if field in fact and (text := _encode_scalar(fact[field])) is not None:
                parts.append(prefix + text)
        run.originals.append(fact)
        return fact_type, ",".join(parts) + "}"

    def _assert_wave(self, partition: _Partition, sid: str, run: _Run, wave: list[tuple[str, str]]) -> None:
        handle = None
        for fact_type, text in wave:
            if fact_type not in partition.types:
                continue
            run.created.setdefault(partition.index, None)
            try:
                code, state = _dre.assert_fact(partition.handle, text)
            except MemoryError as exc:  # the session table is full: the new session may be half-built
                run.poisoned.add(partition.index)
                raise EngineError("durable_rules is out of sessions (ENGINE-NOTES #2)") from exc
            except Exception as exc:
                raise EngineError(f"durable_rules failed to assert a fact: {exc}") from exc
            if code == 0:
                handle = run.created[partition.index] = state
            elif code != 1:  # 1 = not handled: no rule of this partition matches (#6)
                raise EngineError(f"durable_rules returned code {code} for a fact")
        if handle is not None:
            self._drain(partition, handle)
            if run.error is not None:
                rank, error = run.error
                raise ActionFailedError(
                    f"rule {self._ranked[rank].name!r}: action failed: {error!r}"
                ) from error

    def _drain(self, partition: _Partition, handle: int) -> None:
        """Run the queued actions of one session synchronously (nothing else dispatches them, #3/#4)."""
        outcome: list[tuple[Any, Any]] = []
        partition.ruleset.do_actions(handle, lambda error, state: outcome.append((error, state)))
        error, state = outcome[0] if outcome else (EngineError("durable_rules did not complete"), None)
        if error is not None:
            raise EngineError(f"durable_rules failed while running actions: {error}") from error
        if state is not None and "exception" in state:  # #5: what durable swallowed
            raise ActionFailedError(f"an action raised inside durable_rules: {state['exception']}")

    def _close(self, sid: str, run: _Run, *, failed: bool) -> None:
        """Delete every session of the run; never raise (the run's own outcome wins)."""
        sentinel = f'{{"sid":"{sid}","id":"sentinel","_t":"{_SENTINEL}"}}'
        for index, handle in run.created.items():
            if index in run.poisoned:
                continue  # leak one session rather than free garbage
            partition = self._partitions[index]
            try:
                if failed and handle is not None:  # pending actions run as no-ops
                    partition.ruleset.do_actions(handle, lambda error, state: None)
                if index not in run.started:  # deleting a never-actioned session segfaults (#2)
                    _code, handle = _dre.assert_fact(partition.handle, sentinel)
                    partition.ruleset.do_actions(handle, lambda error, state: None)
                if index in run.started:
                    partition.ruleset.delete_state(sid)
            except Exception:
                pass


def compile_network(key: str, rules: Sequence[NetworkRule]) -> DurableNetwork:
    """The network for `key`, built and registered once per process (#7).

    `key` must include a content hash of the rules: a second call with the same key returns the cached
    network even if `rules` differ, and durable_rules can never unregister a network.
    """
    network = _NETWORKS.get(key)
    if network is None:
        with _COMPILE_LOCK:
            network = _NETWORKS.get(key)
            if network is None:
                network = _NETWORKS[key] = DurableNetwork(key, rules)
    return network
