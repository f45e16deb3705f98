"""Differences between two versions of a ruleset, structured for approvers and as unified text.

Structured, labelled in Chinese for the people who review: rules and table rows added or removed (with their
content: a new row shows its cells and actions), and each change naming what moved from what to what
(`决策表 报销审批 行 差旅费小额自动审批 金额: < 5000 → < 8000`, `规则 认定大额贷款 条件: … → …`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from rulesvc.lang.labels import action_label
from rulesvc.lang.model import ActionSpec, ParamSpec, Row, Rule, Ruleset, Table
from rulesvc.lang.printer import const_text, to_text
from rulesvc.model import to_jsonable


@dataclass(frozen=True)
class Change:
    where: str  # "规则 认定大额贷款" / "决策表 报销审批 行 差旅费小额自动审批"
    what: str  # "条件", "金额" (a column), "动作", "优先级", ...
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


WHEN, ON, PRIORITY, THEN, HIT, INPUTS, ROW_ORDER, AGGREGATE, OUTPUTS = (
    "条件",
    "触发事件",
    "优先级",
    "动作",
    "命中方式",
    "输入列",
    "行顺序",
    "汇总",
    "输出列",
)


def _rule_where(rule_id: str) -> str:
    return f"规则 {rule_id}"


def _row_where(table: str, row: Row) -> str:
    return f"决策表 {table} {'默认行' if row.is_default else '行 ' + row.id}"


def _actions_text(actions: tuple[ActionSpec, ...]) -> list[str]:
    result = []
    for action in actions:
        params = {name: _param_text(p) for name, p in action.params.items()}
        if action.duration is not None:
            params["duration"] = const_text(action.duration)
        if action.warnings:
            params["warnings"] = {name: const_text(offset) for name, offset in action.warnings}
        result.append(action_label(action.type, params))
    return result


def _then(actions: tuple[ActionSpec, ...]) -> str:
    return "；".join(_actions_text(actions)) or "（无动作）"


def _rule_content(rule: Rule) -> str:
    when = to_text(rule.when) if rule.when is not None else "（无条件）"
    return f"{_rule_where(rule.id)}（{ON}: {'、'.join(_on(rule))}；{WHEN}: {when} → {_then(rule.then)}）"


def _on(rule: Rule) -> list[str]:
    """A rule's `on:` as written: event types, then field changes (`enter: {stage: 初审}`)."""
    return [*rule.on, *(t.text() for t in rule.transitions)]


def _row_content(table: str, row: Row) -> str:
    cells = "，".join(f"{column}: {text}" for column, text in row.cell_texts.items()) or "任意"
    decided = [f"{column} = {text}" for column, text in row.output_texts.items()]
    if row.then or not decided:
        decided.append(_then(row.then))
    return f"{_row_where(table, row)}（{cells} → {'，'.join(decided)}）"


def _rule_changes(old: Rule, new: Rule) -> list[Change]:
    where = _rule_where(new.id)
    changes = []
    old_when = to_text(old.when) if old.when is not None else None
    new_when = to_text(new.when) if new.when is not None else None
    if old_when != new_when:
        changes.append(Change(where, WHEN, old_when, new_when))
    if _on(old) != _on(new):
        changes.append(Change(where, ON, _on(old), _on(new)))
    if old.priority != new.priority:
        changes.append(Change(where, PRIORITY, old.priority, new.priority))
    if _actions_text(old.then) != _actions_text(new.then):
        changes.append(Change(where, THEN, _then(old.then), _then(new.then)))
    return changes


def _row_changes(table: str, old: Row, new: Row) -> list[Change]:
    where = _row_where(table, new)
    changes = []
    for column in sorted({*old.cell_texts, *new.cell_texts}):
        before, after = old.cell_texts.get(column, "-"), new.cell_texts.get(column, "-")
        if before != after:
            changes.append(Change(where, column, before, after))
    for column in sorted({*old.output_texts, *new.output_texts}):
        old_value, new_value = old.output_texts.get(column), new.output_texts.get(column)
        if old_value != new_value:
            changes.append(Change(where, column, old_value, new_value))
    if _actions_text(old.then) != _actions_text(new.then):
        changes.append(Change(where, THEN, _then(old.then), _then(new.then)))
    return changes


def _table_changes(old: Table, new: Table, diff: RulesetDiff) -> None:
    where = f"决策表 {new.id}"
    if old.hit != new.hit:
        diff.changes.append(Change(where, HIT, old.hit, new.hit))
    if old.aggregate != new.aggregate:
        diff.changes.append(Change(where, AGGREGATE, old.aggregate, new.aggregate))
    old_outputs, new_outputs = _outputs(old), _outputs(new)
    if old_outputs != new_outputs or old.result != new.result:
        diff.changes.append(
            Change(where, OUTPUTS, {**old_outputs, "→": old.result}, {**new_outputs, "→": new.result})
        )
    if dict(old.input_texts) != dict(new.input_texts):
        diff.changes.append(Change(where, INPUTS, dict(old.input_texts), dict(new.input_texts)))
    if old.on != new.on:
        diff.changes.append(Change(where, ON, list(old.on), list(new.on)))
    old_rows = {row.id: row for row in old.rows}
    new_rows = {row.id: row for row in new.rows}
    diff.added += [_row_content(new.id, row) for rid, row in new_rows.items() if rid not in old_rows]
    diff.removed += [_row_content(old.id, row) for rid, row in old_rows.items() if rid not in new_rows]
    for rid, row in new_rows.items():
        if rid in old_rows:
            diff.changes += _row_changes(new.id, old_rows[rid], row)
    if [r.id for r in old.rows if r.id in new_rows] != [r.id for r in new.rows if r.id in old_rows]:
        diff.changes.append(Change(where, ROW_ORDER, [r.id for r in old.rows], [r.id for r in new.rows]))
    diff.changes += _row_changes(new.id, old.default, new.default)


def _outputs(table: Table) -> dict[str, Any]:
    return {name: list(o.values) or o.type for name, o in table.outputs.items()}


def _table_content(table: Table) -> str:
    rows = "；".join(_row_content(table.id, row) for row in (*table.rows, table.default))
    return f"决策表 {table.id}（{rows}）"


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
    diff.added += [_rule_content(rule) for rid, rule in new_rules.items() if rid not in old_rules]
    diff.removed += [_rule_content(rule) for rid, rule in old_rules.items() if rid not in new_rules]
    for rid, rule in new_rules.items():
        if rid in old_rules:
            diff.changes += _rule_changes(old_rules[rid], rule)
    old_tables = {t.id: t for t in old.tables} if old else {}
    new_tables = {t.id: t for t in new.tables} if new else {}
    diff.added += [_table_content(table) for tid, table in new_tables.items() if tid not in old_tables]
    diff.removed += [_table_content(table) for tid, table in old_tables.items() if tid not in new_tables]
    for tid, table in new_tables.items():
        if tid in old_tables:
            _table_changes(old_tables[tid], table, diff)
    return diff
