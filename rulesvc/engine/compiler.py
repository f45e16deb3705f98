"""A validated ruleset compiled for evaluation: indexed tables, then rules forward-chained on durable_rules.

Per event type the ruleset's rules become one durable network (`rulesvc.engine.durable`, the only module
that touches durable_rules). Conditions are compiled twice: simple conjuncts (`ticket.x == "v"`,
`ticket.n < 5000`) become durable's native pattern tests, a sound over-approximation (numeric bounds are
relaxed to non-strict so float rounding can never drop a match); the exact Decimal/enum-aware closure is the
rule's guard, so durable decides *when* rules are ready and chains facts, and the guard decides *whether*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from rulesvc import exactjson
from rulesvc.engine.actions import CompiledAction, compile_action
from rulesvc.engine.closures import compile_explanation, compile_expr
from rulesvc.engine.durable import DurableNetwork, FactPattern, NetworkRule, compile_network
from rulesvc.engine.operators import ArithmeticFault, g_eq
from rulesvc.engine.tables import CompiledTable, UniqueConflict
from rulesvc.errors import ActionFailedError, Location, RuleRuntimeError, RulesvcError
from rulesvc.lang import Compare, Const, Path, TypeEnv
from rulesvc.lang.chaining import conjuncts, required_facts
from rulesvc.lang.model import Rule, Ruleset
from rulesvc.model import Action, Event, FiredRule, TraceEntry, to_jsonable
from rulesvc.sla.calendar import BusinessCalendar

INPUT_FACT = "input"
NATIVE_PREFIX = "ticket__"
_NATIVE_OPS = {"<": "$lte", "<=": "$lte", ">": "$gte", ">=": "$gte"}


MAX_DERIVED_FACTS = 1_000
"""Distinct facts one ruleset may derive while deciding one event; beyond it the rules are looping."""


@dataclass
class Run:
    """The state of one evaluation of one ruleset (isolated: nothing survives it)."""

    scope: dict[str, Any]
    at: datetime
    ruleset: Ruleset
    event_type: str = ""
    facts: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    fired: list[FiredRule] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)
    asserted: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)  # fact type -> facts

    def perform(self, actions: Sequence[CompiledAction], scope: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """Emit a fired rule's or row's actions; `assert`s become derived facts (returned for chaining).

        Refraction: a fact equal to one already derived in this run (same type, equal field values: numbers
        by value) is not derived again, so it re-enables no rule; this holds on every evaluation path
        (tables, join-free rules, durable networks), all of which assert through here."""
        derived: list[Mapping[str, Any]] = []
        for action in actions:
            try:
                if not action.is_assert:
                    self.actions.append(action.emit(scope, self.at))
                    continue
                fact = action.derived_fact(scope)
            except ArithmeticFault as fault:
                raise self.error(
                    "rule.arithmetic",
                    f"{action.rule_ref} 的动作 {action.spec.type} 无法计算 {fault.text}：{fault.reason}"
                    f"（左边 {to_jsonable(fault.left)}，右边 {to_jsonable(fault.right)}）",
                    action.rule_ref,
                    action.spec.location,
                    {"expression": fault.text, "left": fault.left, "right": fault.right},
                ) from None
            if self.derive(fact, action.rule_ref, action.spec.location):
                derived.append(fact)
        return derived

    def derive(self, fact: Mapping[str, Any], ref: str, location: Location) -> bool:
        """Add a derived fact (an `assert`, or a table's outputs); False when an equal one is known."""
        same_type = self.asserted.setdefault(str(fact["_t"]), [])
        if any(_same_fact(fact, known) for known in same_type):
            return False
        if sum(len(facts) for facts in self.asserted.values()) >= MAX_DERIVED_FACTS:
            fields = {k: v for k, v in fact.items() if k != "_t"}
            raise self.error(
                "rule.loop_limit",
                f"{ref} 推出事实 {fact['_t']} {exactjson.dumps(to_jsonable(fields))} 时，"
                f"本次判定推出的不同事实已达 {MAX_DERIVED_FACTS} 个：规则在循环推出新值"
                "（相同的事实不会重复触发，每次字段值都不同才会如此）",
                ref,
                location,
                {"fact": fact["_t"], "with": fields, "derived": MAX_DERIVED_FACTS},
            )
        same_type.append(fact)
        self.facts[str(fact["_t"])] = fact
        return True

    def error(
        self, code: str, message: str, ref: str, location: Location, values: Mapping[str, Any]
    ) -> RuleRuntimeError:
        """A positioned error at `location` (an action, a table) of the rule or row `ref` being fired."""
        return RuleRuntimeError(
            code,
            f"规则集 {self.ruleset.name} 第 {self.ruleset.version} 版：{message}",
            ruleset=self.ruleset.name,
            version=self.ruleset.version,
            rule=ref.partition("/")[2],
            location=location,
            values=to_jsonable(dict(values)),
        )

    def scope_with(self, matched: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        scope = {**self.scope, **self.facts}
        for alias, fact in matched.items():
            if alias != INPUT_FACT:
                scope[alias] = fact
        return scope


def _same_fact(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(g_eq(a[key], b[key]) for key in a)


_RUN: ContextVar[Run] = ContextVar("rulesvc_run")


def base_scope(event: Event) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "ticket": event.ticket,
        "event": {"type": event.type, "id": event.event_id, "occurred_at": event.occurred_at},
    }
    if event.timer is not None:
        scope["timer"] = {
            "name": event.timer.name,
            "point": event.timer.point,
            "due_at": event.timer.due_at,
            "late_by": event.timer.late_by,
        }
    return scope


class CompiledRule:
    def __init__(
        self,
        ruleset: Ruleset,
        rule: Rule,
        env: TypeEnv,
        number_fields: frozenset[str],
        calendars: Mapping[str, BusinessCalendar],
    ) -> None:
        self.ruleset = ruleset
        self.rule = rule
        self.env = env
        self.when = compile_expr(rule.when, env) if rule.when is not None else None
        self.explain = compile_explanation(rule.when, env)
        self.actions: list[CompiledAction] = [
            compile_action(spec, env, f"{ruleset.name}/{rule.id}", calendars) for spec in rule.then
        ]
        # Only facts every firing needs become join patterns; facts under `not`/`or` are read by the guard
        # from the facts derived so far (rulesvc.lang.chaining).
        self.patterns = (
            FactPattern(INPUT_FACT, INPUT_FACT, self._native(number_fields)),
            *(FactPattern(root, root) for root in required_facts(rule.when, env.facts)),
        )

    def _native(self, number_fields: frozenset[str]) -> Mapping[str, Any] | None:
        tests: list[Mapping[str, Any]] = []
        for conjunct in conjuncts(self.rule.when):
            if not (isinstance(conjunct, Compare) and isinstance(conjunct.left, Path)):
                continue
            parts, right = conjunct.left.parts, conjunct.right
            if len(parts) != 2 or parts[0] != "ticket" or not isinstance(right, Const):
                continue
            key = NATIVE_PREFIX + parts[1]
            if conjunct.op == "==" and isinstance(right.value, str) and parts[1] not in number_fields:
                tests.append({key: right.value})
            elif (
                conjunct.op in _NATIVE_OPS and isinstance(right.value, Decimal) and parts[1] in number_fields
            ):
                tests.append({_NATIVE_OPS[conjunct.op]: {key: float(right.value)}})
        if not tests:
            return None
        return tests[0] if len(tests) == 1 else {"$and": tests}

    def changes(self, run: Run) -> tuple[tuple[str, str, str], ...] | None:
        """The field changes this firing waits for: () when the event's type triggers the rule itself,
        None when neither its type nor any change the rule waits for can apply (`Transition.level`)."""
        if not self.rule.transitions or run.event_type in self.rule.on:
            return ()
        ticket = run.scope.get("ticket") or {}
        held = tuple(t.key for t in self.rule.transitions if t.level(ticket))
        return held or None

    def guard(self, matched: Mapping[str, Mapping[str, Any]]) -> bool:
        run = _RUN.get()
        if self.changes(run) is None:
            return False
        if self.when is None:
            return True
        return self.when(run.scope_with(matched)) is True

    def fire(self, matched: Mapping[str, Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
        run = _RUN.get()
        scope = run.scope_with(matched)
        changes = self.changes(run) or ()
        run.fired.append(FiredRule(self.ruleset.name, self.ruleset.version, self.rule.id, changes))
        run.trace.append(
            TraceEntry(self.ruleset.name, self.ruleset.version, self.rule.id, self.explain(scope))
        )
        first = len(run.actions)
        derived = run.perform(self.actions, scope)
        if changes:
            run.actions[first:] = [replace(action, on=changes) for action in run.actions[first:]]
        return derived

    def run_alone(self) -> None:
        """Guard and fire on the input fact alone (a rule of a network without joins)."""
        bound: dict[str, Mapping[str, Any]] = {INPUT_FACT: {}}  # the scope holds the input itself
        try:
            if self.guard(bound):
                self.fire(bound)
        except RulesvcError:
            raise
        except Exception as exc:  # as the durable adapter reports a failing rule
            raise ActionFailedError(f"rule {self.rule.id!r} failed: {type(exc).__name__}: {exc}") from exc

    def network_rule(self) -> NetworkRule:
        return NetworkRule(
            name=self.rule.id,
            salience=self.rule.priority,
            patterns=self.patterns,
            guard=self.guard,
            fire=self.fire,
        )


class CompiledRuleset:
    def __init__(
        self,
        ruleset: Ruleset,
        env: TypeEnv,
        calendars: Mapping[str, BusinessCalendar],
    ) -> None:
        self.ruleset = ruleset
        self.env = env
        self.number_fields = frozenset(
            path[1] for path, ftype in env.fields.items() if path[0] == "ticket" and ftype.kind == "number"
        )
        self.tables = [CompiledTable(table, env) for table in ruleset.tables]
        self.row_actions = {
            (table.id, row.id): [
                compile_action(spec, env, f"{ruleset.name}/{table.row_ref(row)}", calendars)
                for spec in row.then
            ]
            for table in ruleset.tables
            for row in (*table.rows, table.default)
        }
        self.rules = [
            CompiledRule(ruleset, rule, env, self.number_fields, calendars) for rule in ruleset.rules
        ]
        self.networks: dict[str, DurableNetwork] = {}
        self.single_fact: dict[str, list[CompiledRule]] = {}
        self.watched = frozenset(t.field for rule in ruleset.rules for t in rule.transitions)
        """Ticket fields whose changes rules wait for (their values are journaled with each event)."""
        for event_type in sorted({t for rule in ruleset.rules for t in rule.triggers}):
            compiled = [r for r in self.rules if event_type in r.rule.triggers]
            if all(len(r.patterns) == 1 for r in compiled):
                # Every rule joins only the input fact, so there is nothing to join or chain: the rules
                # run in agenda order (priority, then declaration) and the exact guards decide, without
                # durable_rules' per-run session (assert, collect, delete), as tables do.
                self.single_fact[event_type] = sorted(compiled, key=lambda r: -r.rule.priority)
                continue
            rules = [r.network_rule() for r in compiled]
            key = f"{ruleset.name}@{ruleset.version}:{ruleset.content_hash}:{event_type}"
            self.networks[event_type] = compile_network(key, rules)

    def input_fact(self, ticket: Mapping[str, Any]) -> dict[str, Any]:
        fact: dict[str, Any] = {"_t": INPUT_FACT}
        for name, value in ticket.items():
            if name in self.number_fields:
                if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
                    fact[NATIVE_PREFIX + name] = float(value)
            elif isinstance(value, str):
                fact[NATIVE_PREFIX + name] = value
        return fact

    def evaluate(self, event: Event, scope: Mapping[str, Any]) -> Run:
        run = Run(scope=dict(scope), at=event.occurred_at, ruleset=self.ruleset, event_type=event.type)
        token = _RUN.set(run)
        try:
            self._tables(event, run)
            network = self.networks.get(event.type)
            if network is not None:
                network.run([self.input_fact(event.ticket), *(f for fs in run.asserted.values() for f in fs)])
            for rule in self.single_fact.get(event.type, ()):
                rule.run_alone()
        finally:
            _RUN.reset(token)
        return run

    def _unique_conflict(self, conflict: UniqueConflict) -> RuleRuntimeError:
        table, rows = conflict.table, conflict.rows
        refs = [table.row_ref(row) for row in rows]
        inputs = to_jsonable(conflict.inputs)
        shown = "，".join(f"{column} = {exactjson.dumps(value)}" for column, value in inputs.items())
        if table.hit == "any":
            code = "rule.any_conflict"
            rule = "any 表同时匹配的行须给出相同的结果，请让这些行的结果一致、收窄条件，或改用 hit: first"
            what = "同时匹配且结果不同"
        else:
            code = "rule.unique_conflict"
            rule = "unique 表每次至多一行匹配，请收窄这些行的条件，或改用 hit: first"
            what = "同时匹配"
        return RuleRuntimeError(
            code,
            f"规则集 {self.ruleset.name} 第 {self.ruleset.version} 版：决策表 {table.id}（hit: {table.hit}）"
            f"有 {len(rows)} 行{what}：{'、'.join(row.id for row in rows)}（输入 {shown}）；{rule}",
            ruleset=self.ruleset.name,
            version=self.ruleset.version,
            rule=refs[1],
            location=rows[1].location,
            values={"table": table.id, "rows": refs, "inputs": inputs},
        )

    def _tables(self, event: Event, run: Run) -> None:
        for compiled in self.tables:
            table = compiled.table
            if event.type not in table.on:
                continue
            try:
                rows, inputs = compiled.match(run.scope_with({}))
            except UniqueConflict as conflict:
                raise self._unique_conflict(conflict) from None
            for row in rows:
                ref = table.row_ref(row)
                run.fired.append(FiredRule(self.ruleset.name, self.ruleset.version, ref))
                run.trace.append(
                    TraceEntry(self.ruleset.name, self.ruleset.version, ref, compiled.explain(row, inputs))
                )
                run.perform(self.row_actions[(table.id, row.id)], run.scope_with({}))
            result = compiled.result(rows)
            if result is not None and table.result is not None:
                ref = f"{self.ruleset.name}/{table.row_ref(rows[0])}"
                run.derive({"_t": table.result, **result}, ref, table.location)
