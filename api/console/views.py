"""What pages show of a compiled ruleset: its tables as grids (columns, hit policy, every row, the default
row) and its rules and actions as readable text. Plain data for the templates and for `grid.js`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rulesvc.lang.model import ActionSpec, KindSchema, ParamSpec, Row, Ruleset, Table

HIT_LABELS: Mapping[str, str] = {
    "first": "首条命中（first）",
    "unique": "唯一命中（unique）",
    "collect": "全部命中（collect）",
    "any": "任一命中（any，结果须一致）",
    "priority": "按输出优先级取一行（priority）",
    "rule_order": "全部命中，按行顺序（rule_order）",
    "output_order": "全部命中，按输出优先级（output_order）",
}


def param_text(param: ParamSpec) -> str:
    if param.mode == "literal" and isinstance(param.value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in param.value.items()) + "}"
    if param.mode == "expr":
        return f"= {param.value}"
    return str(param.value)


def action_text(action: ActionSpec) -> str:
    """`assign: {group: 费用审批岗}` — an action as it is written in the ruleset."""
    params = ", ".join(f"{k}: {param_text(p)}" for k, p in action.params.items())
    return f"{action.type}: {{{params}}}" if params else f"{action.type}: {{}}"


def enum_options(kind: KindSchema | None, path: str) -> list[str]:
    """The values a column over `ticket.<field>` may take when the field is an enum of the kind."""
    if kind is None or not path.startswith("ticket."):
        return []
    spec = kind.specs.get(path.removeprefix("ticket."))
    if spec is None:
        return []
    enum = spec.enum or (spec.type if spec.type in kind.enums else None)
    return list(kind.enums.get(enum, ())) if enum else []


def _row(row: Row, columns: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "index": row.index,
        "default": row.is_default,
        "cells": {c: row.cell_texts.get(c, "") for c in columns},
        "then": [action_text(a) for a in row.then],
        "line": row.location.line,
    }


def table_view(table: Table, kind: KindSchema | None) -> dict[str, Any]:
    columns = list(table.input_texts)
    return {
        "id": table.id,
        "description": table.description,
        "on": list(table.on),
        "hit": table.hit,
        "hit_label": HIT_LABELS.get(table.hit, table.hit),
        "columns": [
            {"name": c, "path": table.input_texts[c], "options": enum_options(kind, table.input_texts[c])}
            for c in columns
        ],
        "rows": [_row(r, columns) for r in table.rows],
        "default": _row(table.default, columns),
    }


def ruleset_view(ruleset: Ruleset, kind: KindSchema | None) -> dict[str, Any]:
    return {
        "name": ruleset.name,
        "kind": ruleset.kind,
        "description": ruleset.description,
        "tables": [table_view(t, kind) for t in ruleset.tables],
        "rules": [
            {
                "id": r.id,
                "description": r.description,
                "on": list(r.on),
                "priority": r.priority,
                "when": r.when_text,
                "then": [action_text(a) for a in r.then],
            }
            for r in ruleset.rules
        ],
    }
