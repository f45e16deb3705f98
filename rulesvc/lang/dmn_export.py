"""Our decision tables → a DMN 1.3 model another DMN engine loads (`rulesvc dmn export`).

Readable on purpose: names and labels stay as written (Chinese stays Chinese), one decision per table
named like the fact the table asserts, one input data per ticket field used, rules in table order with
their row ids as descriptions. Exported: tables with `outputs:` whose cells are S-FEEL (values, comparisons,
lists, intervals, negations; an enum order test becomes the list of the members it accepts) and whose
inputs are ticket fields or other tables' outputs. A table row with actions, an input that is an
expression, a string test (`contains`, `matches`...) has no DMN equivalent: a positioned error, not a
silent approximation. Re-importing the export (`rulesvc dmn import`) gives tables that export identically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from rulesvc.errors import InvalidRulesetError, Location, RulesetError
from rulesvc.lang.ast import And, Compare, Const, Expr, ListExpr, Or, Path, Subject
from rulesvc.lang.model import KindSchema, Output, Row, Ruleset, Table

DMN_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"
HIT_NAMES = {
    "unique": "UNIQUE",
    "any": "ANY",
    "priority": "PRIORITY",
    "first": "FIRST",
    "rule_order": "RULE ORDER",
    "output_order": "OUTPUT ORDER",
    "collect": "COLLECT",
}
FIELD_TYPES = {
    "decimal": "number",
    "integer": "number",
    "string": "string",
    "boolean": "boolean",
    "date": "date",
}
OUTPUT_TYPES = {"number": "number", "string": "string", "bool": "boolean", "date": "date"}
_OPS = ("<", "<=", ">", ">=")


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


def feel_literal(value: Any, type_name: str = "") -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return str(value)
    if type_name == "date" or isinstance(value, date):
        return f'date("{value}")'
    return json.dumps(str(value), ensure_ascii=False)


class _Exporter:
    def __init__(self, ruleset: Ruleset, kind: KindSchema) -> None:
        self.ruleset = ruleset
        self.kind = kind
        self.errors: list[RulesetError] = []
        self.inputs: dict[str, str] = {}  # ticket field → DMN type
        self.results = {t.result: t for t in ruleset.tables if t.result is not None}

    def refuse(self, location: Location, message: str) -> None:
        self.errors.append(RulesetError("dmn.export_unsupported", message, location))

    def column(self, table: Table, column: str) -> tuple[str, str, tuple[str, ...], str | None]:
        """(the input expression's FEEL text, its type, enum members, the decision it requires)."""
        expr = table.inputs[column]
        if isinstance(expr, Path) and len(expr.parts) == 2:
            root, name = expr.parts
            if root == "ticket":
                spec = self.kind.specs.get(name)
                type_name = spec.type if spec is not None else "string"
                members: tuple[str, ...] = ()
                if spec is not None and spec.enum is not None:
                    members = self.kind.enums.get(spec.enum, ())
                    dmn_type = "string"
                elif type_name in FIELD_TYPES:
                    dmn_type = FIELD_TYPES[type_name]
                elif spec is None and name in self.kind.fields and self.kind.fields[name] in self.kind.enums:
                    members, dmn_type = self.kind.enums[self.kind.fields[name]], "string"
                else:
                    raise _Refused(
                        f"列 {column} 的字段 ticket.{name} 是 {type_name}，DMN 输入只支持数、文本、布尔、日期"
                    )
                self.inputs[name] = dmn_type
                return name, dmn_type, members, None
            source = self.results.get(root)
            if source is not None and name in source.outputs and not source.multi_hit:
                output = source.outputs[name]
                return f"{root}.{name}", OUTPUT_TYPES[output.type], (), root
        raise _Refused(
            f"列 {column} 的输入 {table.input_texts[column]} 不是工单字段或其他表的单值输出，DMN 不支持表达式作输入列"
        )

    def cell(self, cell: Expr, type_name: str, members: tuple[str, ...]) -> str:
        if isinstance(cell, Const) and cell.value is True:
            return "-"
        if isinstance(cell, Or):
            return ", ".join(self.cell(item, type_name, members) for item in cell.items)
        if isinstance(cell, And):
            return self.interval(cell, type_name)
        if not isinstance(cell, Compare) or not isinstance(cell.left, Subject):
            raise _Refused("单元格不是对本列的简单测试")
        op, right = cell.op, cell.right
        if op in ("in", "not in") and isinstance(right, ListExpr):
            values = []
            for item in right.items:
                if not isinstance(item, Const):
                    raise _Refused("列表里只能是字面值")
                values.append(feel_literal(item.value, type_name))
            listed = ", ".join(values)
            return listed if op == "in" else f"not({listed})"
        if not isinstance(right, Const):
            raise _Refused("比较的另一边不是字面值")
        if members and op in _OPS and isinstance(right.value, str):
            return self.enum_members(op, right.value, members)
        literal = feel_literal(right.value, type_name)
        if op == "==":
            return literal
        if op == "!=":
            return f"not({literal})"
        if op in _OPS:
            return f"{op} {literal}"
        raise _Refused(f"DMN 的 S-FEEL 没有 {op} 测试")

    def enum_members(self, op: str, value: str, members: tuple[str, ...]) -> str:
        if value not in members:
            raise _Refused(f"{value} 不是枚举的成员")
        rank = members.index(value)
        accepted = [
            m
            for i, m in enumerate(members)
            if {"<": i < rank, "<=": i <= rank, ">": i > rank, ">=": i >= rank}[op]
        ]
        if not accepted:
            raise _Refused(f"{op} {value} 不接受任何成员")
        return ", ".join(json.dumps(m, ensure_ascii=False) for m in accepted)

    def interval(self, cell: And, type_name: str) -> str:
        if len(cell.items) != 2 or not all(
            isinstance(i, Compare) and isinstance(i.right, Const) and i.op in _OPS for i in cell.items
        ):
            raise _Refused("and 连接的测试只有在构成区间时才能导出（如 [1000..5000)）")
        low = next((i for i in cell.items if isinstance(i, Compare) and i.op in (">", ">=")), None)
        high = next((i for i in cell.items if isinstance(i, Compare) and i.op in ("<", "<=")), None)
        if low is None or high is None:
            raise _Refused("and 连接的测试只有在构成区间时才能导出（如 [1000..5000)）")
        assert isinstance(low.right, Const) and isinstance(high.right, Const)
        return (
            f"{'[' if low.op == '>=' else '('}{feel_literal(low.right.value, type_name)}.."
            f"{feel_literal(high.right.value, type_name)}{']' if high.op == '<=' else ')'}"
        )

    def table(self, table: Table) -> str | None:
        if not table.outputs or table.result is None:
            self.refuse(
                table.location, f"决策表 {table.id} 没有 outputs:，只产生动作；DMN 决策表只有输出值，无法导出"
            )
            return None
        columns: list[tuple[str, str, str, tuple[str, ...]]] = []
        required: list[str] = []
        try:
            for column in table.inputs:
                text, type_name, members, requires = self.column(table, column)
                columns.append((column, text, type_name, members))
                if requires is not None and requires not in required:
                    required.append(requires)
        except _Refused as exc:
            self.refuse(table.location, f"决策表 {table.id}：{exc}")
            return None
        rules: list[str] = []
        for row in table.rows:
            rule = self.rule(table, row, columns)
            if rule is not None:
                rules.append(rule)
        if table.default.then:
            self.refuse(table.default.location, f"决策表 {table.id} 的默认行有动作，DMN 无法表示")
        hit = HIT_NAMES[table.hit]
        aggregation = f" aggregation={quoteattr(table.aggregate.upper())}" if table.aggregate else ""
        lines = [f"  <decision id={quoteattr('decision_' + table.result)} name={quoteattr(table.result)}>"]
        if table.description:
            lines.append(f"    <description>{escape(table.description)}</description>")
        lines.append(f"    <variable name={quoteattr(table.result)}/>")
        for name in required:
            lines.append(
                f"    <informationRequirement><requiredDecision href={quoteattr('#decision_' + name)}/>"
                "</informationRequirement>"
            )
        for _column, text, _type, _members in columns:
            if "." not in text:
                lines.append(
                    f"    <informationRequirement><requiredInput href={quoteattr('#input_' + text)}/>"
                    "</informationRequirement>"
                )
        lines.append(
            f"    <decisionTable label={quoteattr(table.id)} hitPolicy={quoteattr(hit)}{aggregation}>"
        )
        for column, text, type_name, members in columns:
            lines.append(f"      <input label={quoteattr(column)}>")
            lines.append(
                f"        <inputExpression typeRef={quoteattr(type_name)}><text>{escape(text)}</text></inputExpression>"
            )
            if members:
                listed = ", ".join(json.dumps(m, ensure_ascii=False) for m in members)
                lines.append(f"        <inputValues><text>{escape(listed)}</text></inputValues>")
            lines.append("      </input>")
        for name, output in table.outputs.items():
            lines.append(self.output(name, output, table.default))
        lines.extend(rules)
        lines.append("    </decisionTable>")
        lines.append("  </decision>")
        return "\n".join(lines)

    def output(self, name: str, output: Output, default: Row) -> str:
        parts = [f"      <output name={quoteattr(name)} typeRef={quoteattr(OUTPUT_TYPES[output.type])}>"]
        if output.values:
            listed = ", ".join(feel_literal(v, output.type) for v in output.values)
            parts.append(f"        <outputValues><text>{escape(listed)}</text></outputValues>")
        if name in default.outputs:
            literal = feel_literal(default.outputs[name], output.type)
            parts.append(f"        <defaultOutputEntry><text>{escape(literal)}</text></defaultOutputEntry>")
        parts.append("      </output>")
        return "\n".join(parts)

    def rule(
        self, table: Table, row: Row, columns: list[tuple[str, str, str, tuple[str, ...]]]
    ) -> str | None:
        if row.then:
            self.refuse(row.location, f"决策表 {table.id} 的行 {row.id} 有动作（then:），DMN 规则只有输出值")
            return None
        entries = []
        for column, _text, type_name, members in columns:
            try:
                cell = self.cell(row.cells.get(column, Const(True)), type_name, members)
            except _Refused as exc:
                self.refuse(row.location, f"决策表 {table.id} 的行 {row.id} 列 {column}：{exc}")
                return None
            entries.append(f"        <inputEntry><text>{escape(cell)}</text></inputEntry>")
        for name, output in table.outputs.items():
            literal = feel_literal(row.outputs.get(name), output.type)
            entries.append(f"        <outputEntry><text>{escape(literal)}</text></outputEntry>")
        return "\n".join(
            [
                "      <rule>",
                f"        <description>{escape(row.id)}</description>",
                *entries,
                "      </rule>",
            ]
        )

    def export(self) -> str:
        decisions = [text for table in self.ruleset.tables if (text := self.table(table)) is not None]
        if self.errors:
            raise InvalidRulesetError(sorted(self.errors, key=RulesetError.sort_key))
        name = self.ruleset.name
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f"<definitions xmlns={quoteattr(DMN_NS)} id={quoteattr('rulesvc_' + name)} name={quoteattr(name)} "
            f"namespace={quoteattr('urn:rulesvc:ruleset:' + name)}>",
        ]
        if self.ruleset.description:
            lines.append(f"  <description>{escape(self.ruleset.description)}</description>")
        for field, type_name in self.inputs.items():
            lines.append(
                f"  <inputData id={quoteattr('input_' + field)} name={quoteattr(field)}>"
                f"<variable name={quoteattr(field)} typeRef={quoteattr(type_name)}/></inputData>"
            )
        lines.extend(decisions)
        lines.append("</definitions>")
        return "\n".join(lines) + "\n"


def export_dmn(ruleset: Ruleset, kinds: Mapping[str, KindSchema]) -> str:
    """The ruleset's tables as DMN XML; InvalidRulesetError lists every part DMN cannot express."""
    return _Exporter(ruleset, kinds[ruleset.kind]).export()
