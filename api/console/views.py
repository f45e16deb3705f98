"""What pages show of a compiled ruleset: its tables as grids (columns, hit policy, every row, the default
row) and its rules and actions as readable text. Plain data for the templates and for `grid.js`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from rulesvc import exactjson
from rulesvc.lang.labels import ACTIONS, PARAMS
from rulesvc.lang.model import ActionSpec, KindSchema, ParamSpec, Row, Ruleset, Table
from rulesvc.lang.printer import const_text
from rulesvc.model import to_jsonable

HIT_LABELS: Mapping[str, str] = {
    "first": "首条命中（first）",
    "unique": "唯一命中（unique）",
    "collect": "全部命中（collect）",
    "any": "任一命中（any，结果须一致）",
    "priority": "按输出优先级取一行（priority）",
    "rule_order": "全部命中，按行顺序（rule_order）",
    "output_order": "全部命中，按输出优先级（output_order）",
}


def _flow(value: Any) -> str:
    """A literal as the ruleset writes it (YAML flow style): `[sms, email]`, `{预警: 90m}`, `true`."""
    if isinstance(value, ParamSpec):
        return param_text(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if value is None or isinstance(value, bool | timedelta):
        return const_text(value)
    return str(value)


def param_text(param: ParamSpec) -> str:
    if param.mode == "expr":
        return f"= {param.value}"
    return _flow(param.value)


def action_text(action: ActionSpec) -> str:
    """`assign: {group: 费用审批岗}` — an action as it is written in the ruleset (a start_timer with its
    duration and warning points: `start_timer: {timer: 首次响应, duration: 2h, warnings: {预警: 90m}}`)."""
    params = [f"{k}: {param_text(p)}" for k, p in action.params.items()]
    if action.duration is not None:
        params.insert(1 if "timer" in action.params else 0, f"duration: {const_text(action.duration)}")
    if action.warnings:
        params.append(f"warnings: {_flow(dict(action.warnings))}")
    return f"{action.type}: {{{', '.join(params)}}}"


CHANNEL_LABELS: Mapping[str, str] = {"sms": "短信", "email": "邮件", "in_app": "站内信"}
TIME_KEYS = frozenset({"due_at", "started_at", "previous_due_at", "at", "fire_at"})
ACTION_FIELD_LABELS: Mapping[str, str] = {
    **PARAMS,
    "due_at": "截止",
    "started_at": "开始",
    "previous_due_at": "原截止",
    "provisional": "暂定",
    "fired_by": "触发来源",
    "errors": "问题",
    "point": "计时点",
    "late_by": "迟到",
}


def _moment(value: Any) -> str:
    """An ISO time in Beijing time with seconds (`2026-12-06 11:30:51`); other text as it is."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo("Asia/Shanghai"))
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def json_text(value: Any) -> str:
    """A value of no known shape as JSON (Chinese as it is, decimals with their digits); text as it is."""
    value = to_jsonable(value)
    return value if isinstance(value, str) else exactjson.dumps(value)


def _warning_text(point: Any) -> str:
    if not isinstance(point, Mapping):
        return json_text(point)
    text = f"「{point.get('name', '')}」"
    if point.get("after") is not None:
        text += f" 启动后 {point['after']}"
    if point.get("at"):
        text += f"（{_moment(point['at'])}）"
    return text


def action_field_text(key: str, value: Any) -> str:
    """One argument of a decided action as people read it: times in Beijing time, channels and flags in
    Chinese, a start_timer's warning points one by one, anything else as JSON (never a Python repr)."""
    if key in TIME_KEYS and isinstance(value, str):
        return _moment(value)
    if key == "channels" and isinstance(value, list):
        return "、".join(CHANNEL_LABELS.get(str(c), str(c)) for c in value)
    if key == "warnings" and isinstance(value, list):
        return "；".join(_warning_text(p) for p in value)
    if key == "provisional" and isinstance(value, bool):
        return "是（超出日历确认范围）" if value else "否"
    if key == "late_by" and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return f"{value:.0f} 秒"
    if key == "fired_by" and isinstance(value, Mapping) and "timer" in value:
        point = value.get("point", "")
        text = f"计时器 {value['timer']} 的{'截止' if point == 'due' else f'「{point}」'}点"
        if value.get("due_at"):
            text += f"（{_moment(value['due_at'])}）"
        if value.get("late_by") is not None:
            text += f"，迟 {action_field_text('late_by', value['late_by'])}触发"
        return text
    if isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return "、".join(str(v) for v in value)
    return json_text(value)


FIELD_ORDER = (
    *("group", "level", "reviewer", "amount", "to", "channels", "message", "timer", "duration", "calendar"),
    *("started_at", "due_at", "previous_due_at", "warnings", "provisional", "fired_by"),
)


def _field_place(key: str) -> int:
    return FIELD_ORDER.index(key) if key in FIELD_ORDER else len(FIELD_ORDER)


def action_view(action: Mapping[str, Any]) -> dict[str, Any]:
    """A decided action (`record.actions[i]`) for the page: its Chinese name, the rule that produced it and
    each argument as (key, Chinese label, text), in the order the ruleset writes them."""
    kind = str(action.get("type", ""))
    keys = sorted((k for k in action if k not in ("type", "rule")), key=_field_place)
    return {
        "type": kind,
        "label": ACTIONS.get(kind, kind),
        "rule": action.get("rule", ""),
        "fields": [
            {
                "key": key,
                "label": ACTION_FIELD_LABELS.get(key, key),
                "text": action_field_text(key, action[key]),
            }
            for key in keys
        ],
    }


def no_conditions_text(trace: Mapping[str, Any]) -> str:
    """What a fired rule or table row with no conditions in its trace means, as the engine decides it."""
    if str(trace.get("ruleset", "")).startswith("kind:"):
        return "工单不符合其类型的字段定义：按类型的 invalid 设定直接分派，不运行任何规则（问题列在动作的 errors 中）。"
    if "/" in str(trace.get("rule", "")):
        return "该行没有输入条件（各输入列均为任意值「-」）：决策表所监听的事件一发生，该行即命中。"
    return "该规则没有 when 条件：它所监听的事件（on）一发生即触发。"


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
    """The replay form's default period: the last `days` days to now, as the form shows times: Beijing
    time, `2026-12-05 22:13`."""
    end = now.astimezone(ZoneInfo("Asia/Shanghai"))
    start = end - timedelta(days=days)
    return {"from": start.strftime("%Y-%m-%d %H:%M"), "to": end.strftime("%Y-%m-%d %H:%M")}
