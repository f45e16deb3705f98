"""Loaded, compiled rulesets of a rules folder: the engine's entry point (evaluate one event)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rulesvc.engine.compiler import CompiledRuleset, base_scope
from rulesvc.errors import InvalidEventError, Problem
from rulesvc.lang.loader import RulesFolder, load_folder_or_raise, type_env
from rulesvc.lang.model import InvalidPolicy, KindSchema
from rulesvc.model import Action, Decision, Event, FiredRule, TraceEntry
from rulesvc.sla.calendar import BusinessCalendar


class RuleBook:
    """Every ruleset in force, grouped by ticket kind. Pure: `evaluate` reads no clock and stores nothing."""

    def __init__(self, folder: RulesFolder) -> None:
        self.folder = folder
        self.calendars: Mapping[str, BusinessCalendar] = folder.calendars
        self.compiled: dict[str, CompiledRuleset] = {}
        for name in sorted(folder.rulesets):
            ruleset = folder.rulesets[name]
            kind = folder.kinds[ruleset.kind]
            self.compiled[name] = CompiledRuleset(ruleset, type_env(kind, ruleset.facts), folder.calendars)
        self.by_kind: dict[str, list[CompiledRuleset]] = {kind: [] for kind in folder.kinds}
        for compiled in self.compiled.values():
            self.by_kind[compiled.ruleset.kind].append(compiled)

    @classmethod
    def load(cls, paths: Sequence[Path]) -> RuleBook:
        """Load and compile a rules folder; raises InvalidRulesetError listing every authoring error."""
        return cls(load_folder_or_raise(paths))

    def book_for(self, event: Event) -> RuleBook:
        """The book deciding `event`: this one (a versioned registry picks the one in force at its time)."""
        return self

    @property
    def kinds(self) -> Mapping[str, KindSchema]:
        return self.folder.kinds

    def versions(self) -> dict[str, int]:
        return {name: c.ruleset.version for name, c in self.compiled.items()}

    def all_refs(self) -> list[str]:
        """`ruleset/rule` for every rule and `ruleset/table#row` for every table row (coverage universe)."""
        return [f"{name}/{ref}" for name, c in self.compiled.items() for ref in c.ruleset.rule_refs()]

    def evaluate(self, event: Event) -> Decision:
        """The decision on `event`: its kind's rulesets in name order, or, for a ticket breaking its kind's
        schema (`event.problems`), the kind's `invalid:` policy (no rule sees it)."""
        if event.problems:
            kind = self.kinds.get(event.kind)
            if kind is None or kind.invalid is None:
                raise InvalidEventError.of(event.problems)
            return routed_decision(event, kind.invalid)
        rulesets = self.by_kind.get(event.kind)
        if rulesets is None:
            known = "、".join(sorted(self.by_kind)) or "无"
            raise InvalidEventError.of(
                [
                    Problem(
                        "ticket.kind",
                        "validation.unknown_kind",
                        f"没有规则集处理工单类型 {event.kind!r}（有规则集的类型：{known}）",
                    )
                ]
            )
        scope = base_scope(event)
        actions: list[Action] = []
        fired: list[FiredRule] = []
        trace: list[TraceEntry] = []
        watched: dict[str, str] = {}
        for compiled in rulesets:
            run = compiled.evaluate(event, scope)
            actions.extend(run.actions)
            fired.extend(run.fired)
            trace.extend(run.trace)
            if event.timer is None:
                watched.update(
                    (name, value)
                    for name in compiled.watched
                    if isinstance(value := event.ticket.get(name), str)
                )
        return Decision(
            event=event, actions=tuple(actions), fired=tuple(fired), trace=tuple(trace), watched=watched
        )


def routed_decision(event: Event, policy: InvalidPolicy) -> Decision:
    """The decision for a ticket breaking its kind's schema under `invalid: {assign: group}`: no rule runs;
    the ticket goes to that group with every problem listed."""
    problems = [p.to_json() for p in event.problems]
    action = Action("assign", {"group": policy.assign, "errors": problems}, f"{event.kind}/invalid")
    trace = TraceEntry(f"kind:{event.kind}", 0, "invalid")
    return Decision(event=event, actions=(action,), trace=(trace,))
