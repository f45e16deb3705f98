"""GoRules JDM (JSON Decision Model) decision tables ↔ our tables (`rulesvc jdm import|export`).

JDM tables have two hit policies (`first`, `collect`), input columns reading a field of the request, output
columns writing a (dotted) field of the response, and cells in ZEN's unary syntax, which for the subset
here is our cell syntax with every string quoted: `"a", "b"`, `> 5`, `[1..5)`, `!= "a" and != "b"`, `""`
(any). Export writes one graph per table (request → table → response), outputs under the table's result
fact (`风险.等级`), row ids as rule `_id`s; import reads such graphs back (several tables in edge order,
a column reading `fact.field` chains to the table writing it). Anything else is a positioned error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from rulesvc.errors import InvalidRulesetError, Location, RulesetError
from rulesvc.lang.ast import And, Compare, Const, Expr, ListExpr, Or, Subject
from rulesvc.lang.dmn import FeelError, identifier, literal_value
from rulesvc.lang.model import KindSchema, Ruleset, Table

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ORDER = ("<", "<=", ">", ">=")


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


class _Refused(Exception):
    pass


def _cell(cell: Expr, members: tuple[str, ...]) -> str:
    if isinstance(cell, Const) and cell.value is True:
        return ""
    if isinstance(cell, Or):
        parts = [_cell(item, members) for item in cell.items]
        if any(" and " in p and not p.startswith(("[", "(")) for p in parts):
            raise _Refused("“,” 连接的测试里不能再有 and")
        return ", ".join(parts)
    if isinstance(cell, And):
        return " and ".join(_cell(item, members) for item in cell.items)
    if not isinstance(cell, Compare) or not isinstance(cell.left, Subject):
        raise _Refused("单元格不是对本列的简单测试")
    op, right = cell.op, cell.right
    if op in ("in", "not in") and isinstance(right, ListExpr):
        if not all(isinstance(item, Const) for item in right.items):
            raise _Refused("列表里只能是字面值")
        values = [_literal(item.value) for item in right.items if isinstance(item, Const)]
        return ", ".join(values) if op == "in" else " and ".join(f"!= {v}" for v in values)
    if not isinstance(right, Const):
        raise _Refused("比较的另一边不是字面值")
    if members and op in _ORDER and isinstance(right.value, str):
        if right.value not in members:
            raise _Refused(f"{right.value} 不是枚举的成员")
        rank = members.index(right.value)
        tests = {
            "<": lambda i: i < rank,
            "<=": lambda i: i <= rank,
            ">": lambda i: i > rank,
            ">=": lambda i: i >= rank,
        }
        return ", ".join(_literal(m) for i, m in enumerate(members) if tests[op](i))
    if op == "==":
        return _literal(right.value)
    if op in ("!=", *_ORDER):
        return f"{op} {_literal(right.value)}"
    raise _Refused(f"ZEN 单元格没有 {op} 测试")


def export_jdm(ruleset: Ruleset, kinds: Mapping[str, KindSchema], table_id: str) -> str:
    """One table as a JDM graph (JSON text); InvalidRulesetError for what JDM cannot express."""
    kind = kinds[ruleset.kind]
    table = next((t for t in ruleset.tables if t.id == table_id), None)
    if table is None:
        raise KeyError(table_id)
    errors: list[RulesetError] = []

    def refuse(location: Location, message: str) -> None:
        errors.append(RulesetError("jdm.export_unsupported", f"决策表 {table_id}：{message}", location))

    if table.hit not in ("first", "collect") or table.aggregate is not None:
        refuse(
            table.location,
            f"JDM 只有 first 和 collect 两种命中策略（这里是 {table.hit}{'+' + table.aggregate if table.aggregate else ''}）",
        )
    if not table.outputs or table.result is None:
        refuse(table.location, "没有 outputs:；JDM 决策表只有输出值")
    if table.default.then or table.default.outputs:
        refuse(table.default.location, "JDM 没有默认行（默认行须为 {then: []}）")
    inputs = []
    members: dict[str, tuple[str, ...]] = {}
    for position, column in enumerate(table.inputs, start=1):
        text = table.input_texts[column]
        parts = text.split(".")
        if len(parts) != 2 or not all(p.strip() == p and p for p in parts):
            refuse(table.location, f"列 {column} 的输入 {text} 不是字段")
            continue
        root, name = parts
        if root == "ticket":
            spec = kind.specs.get(name)
            if spec is not None and spec.type in ("date", "datetime"):
                refuse(table.location, f"列 {column} 是日期，ZEN 单元格按文本比较日期，不导出")
            if spec is not None and spec.enum is not None:
                members[column] = kind.enums.get(spec.enum, ())
            field = name
        else:
            field = text
        inputs.append({"id": f"in{position}", "name": column, "field": field})
    outputs = [
        {"id": f"out{position}", "name": name, "field": f"{table.result}.{name}"}
        for position, name in enumerate(table.outputs, start=1)
    ]
    rules = []
    for row in table.rows:
        if row.then:
            refuse(row.location, f"行 {row.id} 有动作（then:），JDM 规则只有输出值")
            continue
        rule: dict[str, Any] = {"_id": row.id}
        try:
            for column_spec in inputs:
                rule[column_spec["id"]] = _cell(
                    row.cells.get(column_spec["name"], Const(True)), members.get(column_spec["name"], ())
                )
        except _Refused as exc:
            refuse(row.location, f"行 {row.id}：{exc}")
            continue
        for output_spec, name in zip(outputs, table.outputs, strict=True):
            rule[output_spec["id"]] = _literal(row.outputs.get(name))
        rules.append(rule)
    if errors:
        raise InvalidRulesetError(sorted(errors, key=RulesetError.sort_key))
    node = {
        "id": "table",
        "type": "decisionTableNode",
        "name": table.id,
        "position": {"x": 300, "y": 100},
        "content": {"hitPolicy": table.hit, "inputs": inputs, "outputs": outputs, "rules": rules},
    }
    graph = {
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "Request", "position": {"x": 50, "y": 100}},
            node,
            {"id": "response", "type": "outputNode", "name": "Response", "position": {"x": 600, "y": 100}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "request", "targetId": "table", "type": "edge"},
            {"id": "e2", "sourceId": "table", "targetId": "response", "type": "edge"},
        ],
    }
    return json.dumps(graph, ensure_ascii=False, indent=2) + "\n"


# ---------------------------------------------------------------- import


@dataclass
class JdmModel:
    kind_yaml: str
    ruleset_yaml: str
    kind: str
    ruleset: str


def _where(file: str, source: str, needle: str, start: int = 0) -> tuple[Location, int]:
    found = source.find(needle, start)
    if found < 0:
        return Location(file, 1, 1), start
    line = source.count("\n", 0, found) + 1
    col = found - (source.rfind("\n", 0, found) + 1) + 1
    return Location(file, line, col), found


def _jdm_cell(text: str) -> str:
    """A ZEN unary cell as our cell text: the same syntax once every bare name is known to be a keyword."""
    stripped = text.strip()
    if stripped == "":
        return "-"
    for name in re.findall(r"[^\W\d][\w.$]*|\$\w*", _STRING.sub('""', stripped)):
        if name not in _KEYWORDS:
            raise FeelError(
                f"不支持 ZEN 表达式里的名称或函数 {name!r}（单元格只能与字面值比较）", stripped.find(name)
            )
    if "'" in _STRING.sub('""', stripped):
        raise FeelError("ZEN 的单引号字符串不支持，请用双引号", stripped.find("'"))
    return stripped


def import_jdm(file: str, text: str, name: str) -> JdmModel:
    """A JDM graph's decision tables as a kind and a ruleset named `name`."""
    errors: list[RulesetError] = []
    try:
        graph = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRulesetError(
            [RulesetError("jdm.json", f"JSON 语法错误：{exc.msg}", Location(file, exc.lineno, exc.colno))]
        ) from None
    nodes = graph.get("nodes", []) if isinstance(graph, dict) else []
    edges = graph.get("edges", []) if isinstance(graph, dict) else []
    by_id = {n.get("id"): n for n in nodes if isinstance(n, dict)}
    order: list[dict[str, Any]] = []
    incoming: dict[Any, list[Any]] = {}
    for edge in edges:
        incoming.setdefault(edge.get("targetId"), []).append(edge.get("sourceId"))

    def visit(node_id: Any, seen: set[Any]) -> None:
        node = by_id.get(node_id)
        if node is None or node in order or node_id in seen:
            return
        seen.add(node_id)
        for source in incoming.get(node_id, []):
            visit(source, seen)
        order.append(node)

    for node_id in by_id:
        visit(node_id, set())
    fields: dict[str, str] = {}
    tables: list[dict[str, Any]] = []
    results: dict[str, str] = {}
    taken: set[str] = set()
    for node in order:
        kind_of = node.get("type")
        at, offset = _where(file, text, json.dumps(node.get("id"), ensure_ascii=False))
        if kind_of in ("inputNode", "outputNode"):
            continue
        if kind_of != "decisionTableNode":
            errors.append(
                RulesetError(
                    "jdm.unsupported",
                    f"不支持 JDM 节点类型 {kind_of!r}（{node.get('name')}）：只导入决策表",
                    at,
                )
            )
            continue
        content = node.get("content") or {}
        hit = content.get("hitPolicy", "first")
        if hit not in ("first", "collect"):
            errors.append(RulesetError("jdm.unsupported", f"未知的命中策略 {hit!r}", at))
            continue
        table_id = str(node.get("name") or node.get("id"))
        column_of: dict[str, str] = {}
        inputs: dict[str, str] = {}
        numeric: dict[str, bool] = {}
        for spec in content.get("inputs", []):
            field = str(spec.get("field") or "")
            column = str(spec.get("name") or field)
            head, _, tail = field.partition(".")
            if tail and head in results:
                inputs[column] = field
            elif re.fullmatch(r"[^\W\d]\w*", field):
                inputs[column] = f"ticket.{field}"
                fields.setdefault(field, "string")
            else:
                where, _ = _where(file, text, json.dumps(field, ensure_ascii=False), offset)
                errors.append(
                    RulesetError(
                        "jdm.unsupported",
                        f"输入列 {column} 的字段 {field!r} 不是简单字段名（ZEN 表达式不支持）",
                        where,
                    )
                )
                continue
            column_of[str(spec.get("id"))] = column
        outputs: dict[str, str] = {}
        result = None
        output_of: dict[str, str] = {}
        for spec in content.get("outputs", []):
            field = str(spec.get("field") or spec.get("name") or "")
            head, _, tail = field.partition(".")
            if not tail:
                head, tail = identifier(table_id, set(taken)), field
            if result is not None and head != result:
                errors.append(
                    RulesetError(
                        "jdm.unsupported", f"决策表 {table_id} 的输出写到不同的对象（{result}、{head}）", at
                    )
                )
            result = head
            outputs[tail] = "string"
            output_of[str(spec.get("id"))] = tail
        if result is None:
            errors.append(RulesetError("jdm.unsupported", f"决策表 {table_id} 没有输出列", at))
            continue
        taken.add(result)
        rows = []
        values: dict[str, list[Any]] = {name: [] for name in outputs}
        for index, rule in enumerate(content.get("rules", []), start=1):
            row: dict[str, Any] = {"id": str(rule.get("_id") or f"行{index}")}
            for key, cell_text in rule.items():
                if key.startswith("_"):
                    continue
                cell_text = str(cell_text)
                where, _ = _where(file, text, json.dumps(cell_text, ensure_ascii=False), offset)
                try:
                    if key in column_of:
                        cell = _jdm_cell(cell_text)
                        if cell != "-":
                            row[column_of[key]] = cell
                            if _NUMBER.search(cell.split()[-1].strip("[]()") if cell.split() else ""):
                                numeric[column_of[key]] = True
                    elif key in output_of:
                        value = literal_value(cell_text)
                        row[output_of[key]] = str(value) if type(value).__name__ == "_Number" else value
                        values[output_of[key]].append(value)
                except FeelError as exc:
                    errors.append(
                        RulesetError(
                            "jdm.unsupported",
                            f"单元格 {cell_text!r}：{exc}",
                            where.shifted(0, 2 + exc.offset),
                        )
                    )
            rows.append(row)
        for column, subject in inputs.items():
            if numeric.get(column) and subject.startswith("ticket."):
                fields[subject.removeprefix("ticket.")] = "decimal"
        for name, found in values.items():
            present = [v for v in found if v is not None]
            if present and all(type(v).__name__ == "_Number" for v in present):
                outputs[name] = "number"
            elif present and all(isinstance(v, bool) for v in present):
                outputs[name] = "bool"
        results[result] = table_id
        entry: dict[str, Any] = {
            "id": table_id,
            "on": ["ticket.created"],
            "hit": hit,
            "inputs": inputs,
            "outputs": outputs,
        }
        if result != table_id:
            entry["result"] = result
        entry.update(rows=rows, default={"then": []})
        tables.append(entry)
    if errors:
        raise InvalidRulesetError(sorted(errors, key=RulesetError.sort_key))
    kind = identifier(name, set())
    return JdmModel(
        kind_yaml=_dump({"kind": kind, "fields": {"id": "string", **fields}}),
        ruleset_yaml=_dump({"ruleset": kind, "kind": kind, "tables": tables}),
        kind=kind,
        ruleset=kind,
    )


def _dump(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), allow_unicode=True, sort_keys=False, width=10_000)


def table_of(ruleset: Ruleset, table_id: str) -> Table | None:
    return next((t for t in ruleset.tables if t.id == table_id), None)
