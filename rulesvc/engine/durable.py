"""The durable_rules adapter: the only module that imports durable_rules.

It runs a generic forward-chaining network (`NetworkRule`s built by a compiler elsewhere) over facts (dicts
with a "_t" type) and knows nothing about our ruleset language. durable_rules 2.0.28 is unmaintained; each
defect listed in docs/engine.md ("#n") and each one measured while writing this module is contained:

* #1 alpha-network limits. "512 rules hang" because one alpha node holds at most 511 successors (a full
  open-addressed table loops forever). Also measured: one alpha node feeds at most 255 joins (256 crashes,
  257 is error 108) and a fact may satisfy at most 64 sibling conditions at once (error 303 on assert).
  Rules are split into several durable rulesets (partitions) within those budgets and `run()` iterates the
  partitions to a fixpoint; results do not depend on how the rules were split.
* #2 sessions. One fresh session id per `run()`, deleted in `finally`; concurrent runs are bounded.
  Measured: deleting a session on which no action ever started frees uninitialised memory (segfault), so
  such a session first gets a sentinel fact whose action initialises it.
* #3/#4/#5 actions. Our `Host` subclass never starts durable's background `threading.Timer` loops, and
  durable's Python action loop (`Ruleset.do_actions`) is not used at all: it costs 4-5x more per action
  than the engine calls beneath it, swallows exceptions and can lose results to those loops. We pull the
  matches from the engine (`start_action_for_state` / `complete_and_start_action`) into a per-run
  collector and run guard and fire outside durable, so their exceptions surface as `ActionFailedError`.
  The `run` callable durable requires is a tripwire: if durable ever dispatches by itself, the run fails.
* #6 no match / duplicates. Facts are asserted one at a time through the engine entry point, which reports
  "not handled" as a code (a batch assert raises and strands the actions of the facts that did match);
  every fact gets a unique internal id, so equal facts never collide. A rule whose prefilter has an "$or"
  is matched once per true alternative (measured); duplicates are dropped.
* #7 global names. Each partition is registered once, named from a hash of the key and a generation
  counter; `compile_network` caches by key. Nothing can ever be unregistered, so the CALLER MUST put a
  content hash of the ruleset in the key: a changed ruleset under an old key silently reuses the old
  network, and every distinct key holds memory until the process exits.
* #8 JSON form with "pri": measured, lower pri fires first, ties in declaration order, negative pri last.
  pri = the rule's position in (salience desc, declaration order), so durable's agenda already agrees with
  the order we enforce (a sort by the same key) across partitions.

Facts: durable sees "_t" plus the top-level fields that some `native` condition names, as JSON scalars
(Decimal -> float, date/time -> ISO string, None -> null; nested values and other objects are left out);
guard and fire always get the caller's original objects. Floats are written as "1.0e-05" because durable's
parser rejects "1e-05" (error 204). A prefilter must therefore tolerate float rounding and string-compared
timestamps, and name only scalar fields: it is a necessary condition, the guard decides exactly.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import json
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Any

import durable_rules_engine as _dre
from durable.engine import Host

from rulesvc.errors import ActionFailedError, EngineError, RulesvcError

Facts = Mapping[str, Mapping[str, Any]]

MAX_CONCURRENT_RUNS = 64  # live sessions per durable ruleset are capped at 1,024 (#2)
MAX_FACTS_PER_RUN = 10_000  # input + derived; stops a rule that keeps deriving its own trigger
_MAX_PARTITION = 511  # #1: rules per partition
_STACK_BUDGET = 56  # alpha conditions per fact type per partition (durable's match stack holds 64)
_JOIN_BUDGET = 250  # patterns per fact type per partition (an alpha node feeds at most 255 joins)
_TYPE_BUDGET = 500  # fact types per partition (the root alpha node holds at most 511 successors)
_FIELD_BUDGET = 250  # fields visible to durable (facts with more than 255 properties are error 302)
_NOT_HANDLED = 1  # assert_fact result code: no rule of the ruleset matches (#6)
_SENTINEL = "$rulesvc.sentinel"
_RESERVED_FIELDS = frozenset({"id", "sid", "_t"})  # durable's fact identity and session keys, our type
_COMPARISONS = frozenset({"$lt", "$lte", "$gt", "$gte", "$eq", "$neq", "$ex", "$nex"})
_STR = json.JSONEncoder(ensure_ascii=False).encode
_MATCHED = re.compile(r'"(\w+)":\{"sid":"\d+","id":"(\d+)"')  # quotes inside JSON strings are escaped


@dataclass(frozen=True)
class FactPattern:
    alias: str  # the name under which the matched fact reaches guard and fire
    fact_type: str  # the fact's "_t"
    native: Mapping[str, Any] | None = None  # durable JSON prefilter ANDed with "_t" (see _condition)


@dataclass(frozen=True)
class NetworkRule:
    name: str  # unique within a network
    salience: int  # higher fires first; ties fire in declaration order
    patterns: tuple[FactPattern, ...]  # all must match (a join)
    guard: Callable[[Facts], bool]  # the exact check on {alias: original fact}
    fire: Callable[[Facts], Sequence[Mapping[str, Any]]]  # derived facts to assert; may raise


@dataclass(frozen=True)
class Firing:
    rule: str
    facts: Facts  # alias -> the caller's original fact object


class _QuietHost(Host):  # type: ignore[misc]
    """A durable Host without the background Timer loops that race us for actions (#3/#4)."""

    def _run(self) -> None:
        return None


class _Run:
    """What one `run()` collects; its durable sessions all share one session id."""

    __slots__ = ("activations", "created", "fired", "originals", "poisoned", "started", "stray")

    def __init__(self) -> None:
        self.originals: list[Mapping[str, Any]] = []  # internal fact id -> the caller's object
        self.activations: list[tuple[int, tuple[int, ...]]] = []  # (rank, fact ids in pattern order)
        self.created: dict[int, int] = {}  # partition -> its session's state offset (-1: not known)
        self.started: set[int] = set()  # partitions whose session has started an action: safe to delete
        self.poisoned: set[int] = set()  # partitions whose session may be half-built: never delete
        self.fired: set[tuple[int, tuple[int, ...]]] = set()  # activations already executed
        self.stray = False


_COMPILE_LOCK = threading.RLock()  # compiles are serialised
_HOST: list[Any] = []  # the process's single host (#7: never rebuilt)
_NETWORKS: dict[str, DurableNetwork] = {}
_RUNS: dict[str, _Run] = {}  # session id -> collector, for the tripwire
_SESSION_IDS = itertools.count(1)
_GENERATIONS = itertools.count(1)
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_RUNS)


def _tune_malloc() -> None:
    """Keep durable's session memory in the heap (measured: up to 12x faster runs, RSS stays at its peak).

    A session is 10 KiB to 1.3 MiB of pools allocated on the first assert and freed by delete_state. With
    glibc's defaults the large ones are mmap'ed and the rest often sit at the heap top and are trimmed, so
    every run page-faults its session in again (8 µs vs 55 µs per assert at 10 rules, 86 vs 1,000 µs per
    run at 100). Process-wide, hence done once, here, when the engine is first used; no-op without glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD: keep up to 512 MiB of free heap
    libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD: session pools come from the heap, not mmap


def _stray_action(c: Any) -> None:
    """Every rule's durable `run`: never called, since we never let durable dispatch (#3/#4)."""
    run = _RUNS.get(c.s["sid"])
    if run is not None:
        run.stray = True


def _agenda_order(activations: list[tuple[int, tuple[int, ...]]]) -> None:
    """Salience desc, declaration order, then fact order (durable's pri already agrees per partition)."""
    activations.sort()


def _number(value: float | Decimal) -> str | None:
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    text = repr(number)
    return text.replace("e", ".0e") if "e" in text and "." not in text else text


def _encode_scalar(value: Any) -> str | None:
    """JSON text of a top-level fact value that durable can parse, or None to leave the field out."""
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
    return None


def _literal(value: Any) -> Any:
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float | Decimal) and (not isinstance(value, Decimal) or value.is_finite()):
        number = float(value)
        if math.isfinite(number) and "." in repr(number):
            return number
        if number.is_integer():
            return int(number)  # exact; durable cannot parse "1e+16"
    raise EngineError(f"native condition: durable_rules cannot compare with {value!r}")  # e.g. "1e-05"


def _condition(node: Any, fields: set[str]) -> tuple[dict[str, Any], list[int]]:
    """Validate a native condition; its JSON copy and its DNF term lengths (one alpha path per term).

    Only this subset is accepted: {"$and"|"$or": [cond, ...]}, {"$lt"|"$lte"|"$gt"|"$gte"|"$eq"|"$neq":
    {field: literal}}, {"$ex"|"$nex": {field: 1}} and {field: literal}. Conditions that compare with
    another fact ({"alias": "field"}) are refused: durable reads out of bounds when one is false (measured,
    segfaults); a join condition belongs in the guard. Array operators see nothing (lists are not projected).
    """
    if not isinstance(node, Mapping) or len(node) != 1:
        raise EngineError(f"native condition {node!r}: expected a mapping with one key")
    ((op, arg),) = node.items()
    if op in ("$and", "$or") and isinstance(arg, list | tuple) and arg:
        parts = [_condition(item, fields) for item in arg]
        terms = [0] if op == "$and" else []
        for _, sub in parts:
            terms = [a + b for a in terms for b in sub] if op == "$and" else terms + sub
            if len(terms) > _STACK_BUDGET:
                raise EngineError(f"native condition {node!r} is too large for durable_rules")
        return {op: [plain for plain, _ in parts]}, terms
    if op in _COMPARISONS and isinstance(arg, Mapping) and len(arg) == 1:
        ((field, value),) = arg.items()
        literal = 1 if op in ("$ex", "$nex") else _literal(value)
        out: dict[str, Any] = {op: {_field(field, fields): literal}}
        return out, [1]
    if isinstance(op, str) and not op.startswith("$"):
        return {_field(op, fields): _literal(arg)}, [1]
    raise EngineError(f"native condition {node!r}: unsupported operator {op!r}")


def _field(name: Any, fields: set[str]) -> str:
    if not isinstance(name, str) or not name or name.startswith("$") or name in _RESERVED_FIELDS:
        raise EngineError(f"native condition: {name!r} cannot be a field name (reserved by durable_rules)")
    fields.add(name)
    return name


@dataclass(frozen=True)
class _Partition:
    index: int
    name: str
    handle: int  # the durable_rules_engine ruleset handle
    types: frozenset[str]  # fact types its rules match; other facts are not asserted into it


class DurableNetwork:
    """A forward-chaining network over one or more durable rulesets (partitions)."""

    def __init__(self, key: str, rules: Sequence[NetworkRule], *, partition_size: int = 400) -> None:
        if not 1 <= partition_size <= _MAX_PARTITION:
            raise EngineError(
                f"partition_size must be within 1..{_MAX_PARTITION} (engine defect #1, docs/engine.md)"
            )
        if len({r.name for r in rules}) != len(rules):
            raise EngineError(f"network {key!r}: rule names are not unique")
        self.key = key
        order = sorted(range(len(rules)), key=lambda i: (-rules[i].salience, i))
        self._ranked = [rules[i] for i in order]  # rank = agenda position = durable pri
        self._aliases = [tuple(p.alias for p in r.patterns) for r in self._ranked]
        fields: set[str] = set()
        conditions: list[list[dict[str, Any]]] = []
        costs: list[dict[str, tuple[int, int]]] = []  # per rank: fact type -> (alpha conditions, patterns)
        for rule, aliases in zip(self._ranked, self._aliases, strict=True):
            if not aliases or len(set(aliases)) != len(aliases) or not all(a.isidentifier() for a in aliases):
                raise EngineError(f"rule {rule.name!r}: needs patterns with distinct identifier aliases")
            conds: list[dict[str, Any]] = []
            cost: dict[str, tuple[int, int]] = {}
            for p in rule.patterns:
                native, terms = _condition(p.native, fields) if p.native is not None else (None, [])
                test = {"$and": [{"_t": p.fact_type}, native]} if native else {"_t": p.fact_type}
                conds.append({p.alias: test})  # "_t" first: each type gets its own alpha subtree
                stack, joins = cost.get(p.fact_type, (0, 0))
                cost[p.fact_type] = (stack + sum(terms), joins + 1)
            conditions.append(conds)
            costs.append(cost)
        if len(fields) > _FIELD_BUDGET:
            raise EngineError(f"network {key!r}: native conditions use more than {_FIELD_BUDGET} fields")
        self._fields = tuple((f, _STR(f) + ":") for f in sorted(fields))
        with _COMPILE_LOCK:
            self._partitions = self._register(key, self._split(costs, partition_size), conditions)

    def _split(self, costs: list[dict[str, tuple[int, int]]], size: int) -> list[list[int]]:
        """Consecutive ranks, within the rule count and durable's alpha budgets (#1)."""
        groups: list[list[int]] = []
        used: dict[str, tuple[int, int]] = {}
        for rank, cost in enumerate(costs):
            if any(s > _STACK_BUDGET or j > _JOIN_BUDGET for s, j in cost.values()):
                raise EngineError(f"rule {self._ranked[rank].name!r} is too large for durable_rules")
            merged = {
                t: (used.get(t, (0, 0))[0] + s, used.get(t, (0, 0))[1] + j) for t, (s, j) in cost.items()
            }
            if (
                not groups
                or len(groups[-1]) >= size
                or len(used.keys() | cost.keys()) > _TYPE_BUDGET
                or any(s > _STACK_BUDGET or j > _JOIN_BUDGET for s, j in merged.values())
            ):
                groups.append([])
                used, merged = {}, cost
            groups[-1].append(rank)
            used.update(merged)
        return groups

    def _register(self, key: str, groups: list[list[int]], conditions: list[list[Any]]) -> list[_Partition]:
        with _COMPILE_LOCK:
            return self._register_locked(key, groups, conditions)

    def _register_locked(
        self, key: str, groups: list[list[int]], conditions: list[list[Any]]
    ) -> list[_Partition]:
        if not _HOST:
            _tune_malloc()
            _HOST.append(_QuietHost())
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        generation = next(_GENERATIONS)
        partitions = []
        for index, ranks in enumerate(groups):
            rules = {
                f"r{rank}": {"all": conditions[rank], "pri": rank, "run": _stray_action} for rank in ranks
            }
            rules["sentinel"] = {
                "all": [{"m": {"_t": _SENTINEL}}],
                "pri": len(self._ranked),
                "run": _stray_action,
            }
            name = f"rulesvc_{digest}_{generation}_{index}"
            try:
                _HOST[0].register_rulesets({name: rules})
                handle = _HOST[0].get_ruleset(name)._handle
            except Exception as exc:
                raise EngineError(
                    f"durable_rules rejected partition {index} of network {key!r}: {exc}"
                ) from exc
            types = frozenset(p.fact_type for rank in ranks for p in self._ranked[rank].patterns)
            partitions.append(_Partition(index, name, handle, types))
        return partitions

    def run(self, facts: Sequence[Mapping[str, Any]]) -> list[Firing]:
        """Fire the network over `facts`; the firings (guard returned True) in execution order.

        Evaluation goes in waves: the activations of a wave's facts are collected from every partition,
        then executed in agenda order; the facts they derive form the next wave, until nothing is derived.
        A rule fires at most once per combination of distinct facts.
        """
        with _SLOTS:  # #2: bounded live sessions
            sid = str(next(_SESSION_IDS))
            run = _RUNS[sid] = _Run()
            try:
                return self._evaluate(sid, run, facts)
            finally:
                self._close(sid, run)
                del _RUNS[sid]

    def _evaluate(self, sid: str, run: _Run, facts: Sequence[Mapping[str, Any]]) -> list[Firing]:
        firings: list[Firing] = []
        wave = [self._admit(sid, run, fact, None) for fact in facts]
        while wave:
            for partition in self._partitions:
                self._assert_wave(partition, run, wave)
            if run.stray:
                raise EngineError(
                    "durable_rules dispatched an action on its own (engine defect #4, docs/engine.md)"
                )
            activations, run.activations, wave = run.activations, [], []
            _agenda_order(activations)
            for activation in activations:
                if activation in run.fired:  # durable matches once per $or alternative
                    continue
                run.fired.add(activation)
                rank, ids = activation
                rule = self._ranked[rank]
                bound = {alias: run.originals[i] for alias, i in zip(self._aliases[rank], ids, strict=True)}
                try:
                    if not rule.guard(bound):
                        continue
                    derived = rule.fire(bound)
                except RulesvcError:  # already ours (e.g. a positioned rule error): passed on as it is
                    raise
                except Exception as exc:  # durable would have swallowed it (#5)
                    raise ActionFailedError(
                        f"rule {rule.name!r} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                firings.append(Firing(rule.name, bound))
                if derived:
                    wave.extend(self._admit(sid, run, fact, rule.name) for fact in derived)
        return firings

    def _admit(self, sid: str, run: _Run, fact: Mapping[str, Any], rule: str | None) -> tuple[str, str]:
        """Register a fact under a fresh internal id; its type and the JSON durable gets."""
        fact_type = fact.get("_t") if isinstance(fact, Mapping) else None
        if not isinstance(fact_type, str):
            if rule is not None:
                raise ActionFailedError(f"rule {rule!r} derived a fact without a string '_t': {fact!r}")
            raise EngineError(f"a fact without a string '_t': {fact!r}")
        if len(run.originals) >= MAX_FACTS_PER_RUN:
            raise EngineError(f"network {self.key!r}: more than {MAX_FACTS_PER_RUN} facts in one run")
        parts = [f'{{"sid":"{sid}","id":"{len(run.originals)}","_t":{_STR(fact_type)}']
        for field, prefix in self._fields:
            if field in fact and (text := _encode_scalar(fact[field])) is not None:
                parts.append(prefix + text)
        run.originals.append(fact)
        return fact_type, ",".join(parts) + "}"

    def _assert_wave(self, partition: _Partition, run: _Run, wave: list[tuple[str, str]]) -> None:
        state = -1
        for fact_type, text in wave:
            if fact_type not in partition.types:
                continue
            run.created.setdefault(partition.index, -1)
            try:
                code, offset = _dre.assert_fact(partition.handle, text)
            except MemoryError as exc:  # the session table is full; the new session may be half-built
                run.poisoned.add(partition.index)
                raise EngineError(
                    "durable_rules is out of sessions (engine defect #2, docs/engine.md)"
                ) from exc
            except Exception as exc:
                raise EngineError(f"durable_rules failed to assert a fact: {exc}") from exc
            if code == 0:
                state = run.created[partition.index] = offset
            elif code != _NOT_HANDLED:
                raise EngineError(f"durable_rules returned code {code} for a fact")
        if state >= 0:
            self._collect(partition, run, state)

    def _collect(self, partition: _Partition, run: _Run, state: int) -> None:
        """Move every queued match of the session into the collector (one C call per match, no JSON parse)."""
        handle, aliases, append = partition.handle, self._aliases, run.activations.append
        try:
            started = _dre.start_action_for_state(handle, state)
            if started is None:
                return
            run.started.add(partition.index)
            messages = started[1]
            while messages is not None:  # '{"r<rank>":{"<alias>":{"sid":"…","id":"<fact id>",…},…}}'
                rank = int(messages[3 : messages.index('"', 3)])
                ids = dict(_MATCHED.findall(messages))
                append((rank, tuple(int(ids[alias]) for alias in aliases[rank])))
                messages = _dre.complete_and_start_action(handle, state)
        except Exception as exc:
            raise EngineError(f"durable_rules failed while collecting matches: {exc}") from exc

    def _close(self, sid: str, run: _Run) -> None:
        """Delete the run's sessions. Never raises: the run's own outcome wins, a leaked session is bounded."""
        for index in run.created:
            handle = self._partitions[index].handle
            try:
                if index not in run.started and index not in run.poisoned:  # else deleting segfaults (#2)
                    code, state = _dre.assert_fact(handle, f'{{"sid":"{sid}","id":"-","_t":"{_SENTINEL}"}}')
                    if code == 0 and _dre.start_action_for_state(handle, state) is not None:
                        run.started.add(index)
                if index in run.started:
                    _dre.delete_state(handle, sid)
            except Exception:
                pass


def compile_network(key: str, rules: Sequence[NetworkRule]) -> DurableNetwork:
    """The network for `key`, built and registered once per process (#7).

    `key` must contain a content hash of the rules: a second call with the same key returns the cached
    network even if `rules` differ, and durable_rules can never unregister a network.
    """
    network = _NETWORKS.get(key)
    if network is None:
        with _COMPILE_LOCK:
            network = _NETWORKS.get(key) or _NETWORKS.setdefault(key, DurableNetwork(key, rules))
    return network
