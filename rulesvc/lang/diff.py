"""Differences between two versions of a ruleset, structured for approvers and as unified text.

Structured: rules and table rows added, removed and changed, each change naming what moved from what to what
(`报销审批#差旅费小额自动审批 金额: < 5000 → < 8000`, `when: ticket.amount < 5000 → ticket.amount < 8000`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from rulesvc.lang.expr import to_text
from rulesvc.lang.model import ActionSpec, ParamSpec, Row, Rule, Ruleset, Table
from rulesvc.model import to_jsonable


@dataclass(frozen=True)
class Change:
    where: str  # "rule 认定大额贷款" / "table 报销审批 row 差旅费小额自动审批"
    what: str  # "when", "金额", "then", "priority", ...
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "what": self.what,
            "old": to_jsonable(self.old),
            "new": to_jsonable(self.new),
        }

    def __str__(self) -> str:
        return f"{self.where} {self.what}: {_show(self.old)} → {_show(self.new)}"


@dataclass
class RulesetDiff:
    ruleset: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    text: str = ""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "added": self.added,
            "removed": self.removed,
            "changed": [c.to_json() for c in self.changes],
            "summary": [str(c) for c in self.changes],
            "text": self.text,
        }


def _show(value: Any) -> str:
    if value is None:
        return "（无）"
    return str(value)


def _param_text(param: ParamSpec) -> Any:
    if isinstance(param.value, dict):
        return {k: _param_text(v) if isinstance(v, ParamSpec) else v for k, v in param.value.items()}
    return param.value


def _actions_text(actions: tuple[ActionSpec, ...]) -> list[str]:
    result = []
    for action in actions:
        params = {name: _param_text(p) for name, p in action.params.items()}
        if action.duration is not None:
            params["duration"] = str(action.duration)
        if action.warnings:
            params["warnings"] = {name: str(offset) for name, offset in action.warnings}
        body = ", ".join(f"{k}: {to_jsonable(v)}" for k, v in params.items())
        result.append(f"{action.type}({body})")
    return result


def _rule_changes(old: Rule, new: Rule) -> list[Change]:
    where = f"rule {new.id}"
    changes = []
    old_when = to_text(old.when) if old.when is not None else None
    new_when = to_text(new.when) if new.when is not None else None
    if old_when != new_when:
        changes.append(Change(where, "when", old_when, new_when))
    if old.on != new.on:
        changes.append(Change(where, "on", list(old.on), list(new.on)))
    if old.priority != new.priority:
        changes.append(Change(where, "priority", old.priority, new.priority))
    if _actions_text(old.then) != _actions_text(new.then):
        changes.append(
            Change(where, "then", "; ".join(_actions_text(old.then)), "; ".join(_actions_text(new.then)))
        )
    return changes


def _row_changes(table: str, old: Row, new: Row) -> list[Change]:
    where = f"table {table} row {new.id}"
    changes = []
    for column in sorted({*old.cell_texts, *new.cell_texts}):
        before, after = old.cell_texts.get(column, "-"), new.cell_texts.get(column, "-")
        if before != after:
            changes.append(Change(where, column, before, after))
    if _actions_text(old.then) != _actions_text(new.then):
        changes.append(
            Change(where, "then", "; ".join(_actions_text(old.then)), "; ".join(_actions_text(new.then)))
        )
    return changes


def _table_changes(old: Table, new: Table, diff: RulesetDiff) -> None:
    where = f"table {new.id}"
    if old.hit != new.hit:
        diff.changes.append(Change(where, "hit", old.hit, new.hit))
    if dict(old.input_texts) != dict(new.input_texts):
        diff.changes.append(Change(where, "inputs", dict(old.input_texts), dict(new.input_texts)))
    if old.on != new.on:
        diff.changes.append(Change(where, "on", list(old.on), list(new.on)))
    old_rows = {row.id: row for row in old.rows}
    new_rows = {row.id: row for row in new.rows}
    diff.added += [f"table {new.id} row {rid}" for rid in new_rows if rid not in old_rows]
    diff.removed += [f"table {old.id} row {rid}" for rid in old_rows if rid not in new_rows]
    for rid, row in new_rows.items():
        if rid in old_rows:
            diff.changes += _row_changes(new.id, old_rows[rid], row)
    if [r.id for r in old.rows if r.id in new_rows] != [r.id for r in new.rows if r.id in old_rows]:
        diff.changes.append(Change(where, "row order", [r.id for r in old.rows], [r.id for r in new.rows]))
    diff.changes += _row_changes(new.id, old.default, new.default)


def diff_rulesets(
    old: Ruleset | None, new: Ruleset | None, old_label: str = "old", new_label: str = "new"
) -> RulesetDiff:
    """Structured and text diff; either side may be None (ruleset created or deleted)."""
    name = (new or old).name if (new or old) is not None else ""  # type: ignore[union-attr]
    diff = RulesetDiff(name)
    old_text = old.source_text if old is not None else ""
    new_text = new.source_text if new is not None else ""
    diff.text = "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"{name} ({old_label})",
            tofile=f"{name} ({new_label})",
        )
    )
    old_rules = {r.id: r for r in old.rules} if old else {}
    new_rules = {r.id: r for r in new.rules} if new else {}
    diff.added += [f"rule {rid}" for rid in new_rules if rid not in old_rules]
    diff.removed += [f"rule {rid}" for rid in old_rules if rid not in new_rules]
    for rid, rule in new_rules.items():
        if rid in old_rules:
            diff.changes += _rule_changes(old_rules[rid], rule)
    old_tables = {t.id: t for t in old.tables} if old else {}
    new_tables = {t.id: t for t in new.tables} if new else {}
    diff.added += [f"table {tid}" for tid in new_tables if tid not in old_tables]
    diff.removed += [f"table {tid}" for tid in old_tables if tid not in new_tables]
    for tid, table in new_tables.items():
        if tid in old_tables:
            _table_changes(old_tables[tid], table, diff)
    return diff
