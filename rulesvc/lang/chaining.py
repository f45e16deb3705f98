"""Which derived facts a rule waits for, and rules whose own `assert` can enable them again.

A rule is (re-)enabled by a newly asserted fact only when that fact is one of its join patterns: a fact its
condition *requires* (a bare fact name, or a comparison on the fact, in the top-level `and`). Facts read
under `not`/`or` or in a `!=`/`not in` comparison are looked up in the facts derived so far; they never
start a firing. The engine compiles exactly these patterns (`required_facts`), and `rulesvc check` warns
about a cycle of rules through them (`chaining_warnings`).

Asserting a fact equal to one already present changes nothing and re-enables no rule (refraction), so a
cycle that re-asserts the same values stops by itself; a cycle that asserts new values each time stops at
the engine's limit of derived facts per evaluation, with a positioned error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rulesvc.errors import RulesetError
from rulesvc.lang.ast import And, Compare, Expr, Path, paths
from rulesvc.lang.model import ActionSpec, Rule, Ruleset

_NOT_REQUIRING = ("!=", "not in")


def conjuncts(expr: Expr | None) -> list[Expr]:
    """The top-level `and` items of a condition, flattened (none for a rule without `when`)."""
    if expr is None:
        return []
    if isinstance(expr, And):
        return [c for item in expr.items for c in conjuncts(item)]
    return [expr]


def required_facts(when: Expr | None, facts: Iterable[str]) -> tuple[str, ...]:
    """The derived facts every firing of a rule with condition `when` needs, sorted: its join patterns."""
    declared = set(facts)
    return tuple(
        sorted(
            {
                p[0]
                for conjunct in conjuncts(when)
                if isinstance(conjunct, Path)
                or (isinstance(conjunct, Compare) and conjunct.op not in _NOT_REQUIRING)
                for p in paths(conjunct)
                if p[0] in declared
            }
        )
    )


def _asserts(rule: Rule) -> list[tuple[str, ActionSpec]]:
    found = []
    for action in rule.then:
        fact = action.params.get("fact")
        if action.type == "assert" and fact is not None and fact.mode == "literal":
            found.append((str(fact.value), action))
    return found


def chaining_warnings(rulesets: Iterable[Ruleset]) -> list[RulesetError]:
    """A positioned warning at each `assert` through which a rule can enable itself again (directly, or via
    other rules of its ruleset on a common event type)."""
    warnings = [warning for ruleset in rulesets for warning in _ruleset_warnings(ruleset)]
    return sorted(warnings, key=RulesetError.sort_key)


def _ruleset_warnings(ruleset: Ruleset) -> list[RulesetError]:
    needs: Mapping[str, tuple[str, ...]] = {
        rule.id: required_facts(rule.when, ruleset.facts) for rule in ruleset.rules
    }
    by_id = {rule.id: rule for rule in ruleset.rules}

    def enabled_by(rule: Rule, fact: str) -> list[Rule]:
        return [
            other
            for other in ruleset.rules
            if fact in needs[other.id] and set(other.triggers) & set(rule.triggers)
        ]

    def cycle(start: Rule, fact: str) -> list[str] | None:
        """Rule ids from `start` back to `start` through facts asserted and required (breadth first)."""
        frontier = [[start.id, other.id] for other in enabled_by(start, fact)]
        seen: set[str] = set()
        while frontier:
            path = frontier.pop(0)
            last = path[-1]
            if last == start.id:
                return path[:-1]
            if last in seen:
                continue
            seen.add(last)
            for next_fact, _ in _asserts(by_id[last]):
                frontier.extend([*path, other.id] for other in enabled_by(by_id[last], next_fact))
        return None

    warnings = []
    for rule in ruleset.rules:
        for fact, action in _asserts(rule):
            path = cycle(rule, fact)
            if path is None:
                continue
            via = "" if len(path) == 1 else f"（经由规则 {' → '.join(path[1:])}）"
            warnings.append(
                RulesetError(
                    "chaining.self_enabling",
                    f"警告：规则 {rule.id} 推出的事实 {fact} 会再次满足它自己的条件{via}："
                    "与已有事实相同时不会重复触发，字段值不同则每次都会再次触发，"
                    "直到超过每次判定的派生事实上限而报错",
                    action.location,
                    "确认推出的字段值不会随每次触发而变化，或在条件中排除已推出的情形（如 not 事实名）",
                )
            )
    return warnings
