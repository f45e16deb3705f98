"""What pages show of a compiled ruleset: its tables as grids (columns, hit policy, every row, the default
row) and its rules and actions as readable text. Plain data for the templates and for `grid.js`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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


def table_diff(old: Table | None, new: Table) -> dict[str, Any]:
    """A table of the draft beside the same table of the version it is based on, cell by cell: each row
    is `added`, `removed` or kept, each kept cell carries its old text when it changed."""
    columns = list(new.input_texts)
    old_rows = {r.id: r for r in old.rows} if old is not None else {}
    rows: list[dict[str, Any]] = []
    for row in new.rows:
        before = old_rows.get(row.id)
        cells = []
        for c in columns:
            now = row.cell_texts.get(c, "")
            was = before.cell_texts.get(c, "") if before is not None else now
            cells.append({"column": c, "text": now, "old": was, "changed": before is not None and was != now})
        rows.append(
            {
                "id": row.id,
                "state": "added" if before is None and old is not None else "kept",
                "cells": cells,
                "then": [action_text(a) for a in row.then],
                "then_changed": before is not None
                and [action_text(a) for a in before.then] != [action_text(a) for a in row.then],
            }
        )
    kept = {r.id for r in new.rows}
    for row in old.rows if old is not None else ():
        if row.id not in kept:
            rows.append(
                {
                    "id": row.id,
                    "state": "removed",
                    "cells": [
                        {"column": c, "text": row.cell_texts.get(c, ""), "old": "", "changed": False}
                        for c in columns
                    ],
                    "then": [action_text(a) for a in row.then],
                    "then_changed": False,
                }
            )
    return {"id": new.id, "columns": columns, "hit": HIT_LABELS.get(new.hit, new.hit), "rows": rows}


def ruleset_diff(old: Ruleset | None, new: Ruleset) -> list[dict[str, Any]]:
    tables = {t.id: t for t in old.tables} if old is not None else {}
    return [table_diff(tables.get(t.id), t) for t in new.tables]


def case_results(case_names: list[str], tests: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each case of the ruleset's own case file with pass/fail and, for a failure, what was expected
    and what happened (the gate's report, per scenario of versions it ran in)."""
    failures: dict[str, list[Mapping[str, Any]]] = {}
    for failure in tests.get("failures", []):
        failures.setdefault(str(failure.get("name")), []).append(failure)
    return [
        {"index": i, "name": name, "passed": name not in failures, "failures": failures.get(name, [])}
        for i, name in enumerate(case_names)
    ]


REPLAY_DAYS = 30


def replay_window(now: datetime, days: int = REPLAY_DAYS) -> dict[str, str]:
    """The replay form's default period: the last `days` days to now, as `datetime-local` values in
    Beijing time (`2026-12-05T22:13`)."""
    end = now.astimezone(ZoneInfo("Asia/Shanghai"))
    start = end - timedelta(days=days)
    return {"from": start.strftime("%Y-%m-%dT%H:%M"), "to": end.strftime("%Y-%m-%dT%H:%M")}
