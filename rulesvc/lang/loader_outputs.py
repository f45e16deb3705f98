"""Loading what a decision table decides besides actions: its hit policy and aggregation, its output columns
(`outputs:`), the output cells of its rows, and the derived fact (`result:`) its outputs are asserted as."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from rulesvc.errors import Location
from rulesvc.lang.loader_actions import ActionLoader
from rulesvc.lang.model import AGGREGATES, HIT_POLICIES, MULTI_HIT, OUTPUT_TYPES, Output
from rulesvc.yamlpos import plain

ORDERED_HITS = ("priority", "output_order")
FACT_TYPES = {"string": "string", "number": "number", "bool": "bool", "date": "datetime"}


def output_type_of(values: list[Any]) -> str:
    """The type of a listed output: number when every value is a number, bool when every one is a bool."""
    if values and all(isinstance(v, bool) for v in values):
        return "bool"
    if values and all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values):
        return "number"
    return "string"


def result_fields(hit: str, aggregate: str | None, outputs: Mapping[str, Output]) -> dict[str, str]:
    """The fields (name → condition-language type) of the fact a table's outputs are asserted as: one value
    per output under a single-hit policy, a list per output under a multi-hit one, a number when aggregated."""
    if aggregate is not None:
        return {name: "number" for name in outputs}
    if hit in MULTI_HIT:
        return {name: "list" for name in outputs}
    return {name: FACT_TYPES[output.type] for name, output in outputs.items()}


def coerce_output(output_type: str, value: Any) -> tuple[bool, Any]:
    """A YAML scalar as a value of an output column: (ok, value). `null` is allowed in every column."""
    value = plain(value)
    if value is None:
        return True, None
    if output_type == "number":
        if isinstance(value, bool):
            return False, None
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return False, None
        return number.is_finite(), number
    if output_type == "bool":
        if isinstance(value, bool):
            return True, value
        return str(value).strip() in ("true", "false"), str(value).strip() == "true"
    if output_type == "date":
        text = value.isoformat() if isinstance(value, date) else str(value).strip()
        try:
            date.fromisoformat(text)
        except ValueError:
            return False, None
        return True, text
    if isinstance(value, bool):
        return True, "true" if value else "false"
    return True, str(value)


class OutputLoader(ActionLoader):
    """Hit policy, aggregation and outputs of one table (the rest of a table is `_RulesetLoader`'s)."""

    def load_hit(self, item: Mapping[str, Any]) -> tuple[str, str | None]:
        src = self.src
        hit = str(item.get("hit", "first"))
        if hit not in HIT_POLICIES:
            self.unknown(
                "bad_hit_policy",
                f"未知的命中方式 {hit!r}",
                src.value_loc(item, "hit"),
                hit,
                HIT_POLICIES,
                f"use {', '.join(HIT_POLICIES)}",
            )
        raw = item.get("aggregate")
        if raw is None:
            return hit, None
        aggregate = str(raw)
        where = src.value_loc(item, "aggregate")
        if aggregate not in AGGREGATES:
            self.unknown(
                "bad_aggregate",
                f"未知的汇总方式 {aggregate!r}",
                where,
                aggregate,
                AGGREGATES,
                f"use {', '.join(AGGREGATES)}",
            )
            return hit, None
        if hit != "collect":
            self.error(
                "bad_aggregate",
                f"aggregate: {aggregate} 只用于 hit: collect（本表是 hit: {hit}）",
                where,
                "写成 hit: collect，或去掉 `aggregate:`",
            )
            return hit, None
        return hit, aggregate

    def load_outputs(self, item: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Output]:
        src = self.src
        raw = item.get("outputs")
        if raw is None:
            return {}
        if not isinstance(raw, Mapping) or not raw:
            self.error(
                "bad_value",
                "outputs 须把每个输出列映射到它的类型或取值",
                src.value_loc(item, "outputs"),
                "e.g. outputs: {级别: [总行审批, 分行审批, 支行审批], 额度: number}",
            )
            return {}
        outputs: dict[str, Output] = {}
        for name, spec in raw.items():
            column = str(name)
            where = src.value_loc(raw, name)
            if column in inputs or column in ("id", "then"):
                self.error(
                    "duplicate_column",
                    f"输出列 {column!r} 与某个输入列或行的键同名",
                    src.key_loc(raw, name),
                    "请给输出列另起名字",
                )
                continue
            output = self._output(column, spec, where)
            if output is not None:
                outputs[column] = output
        return outputs

    def _output(self, column: str, spec: Any, where: Location) -> Output | None:
        values: list[Any] = []
        type_name: str | None = None
        if isinstance(spec, list):
            values = [plain(v) for v in spec]
            type_name = output_type_of(values)
        elif isinstance(spec, Mapping):
            type_name = str(spec.get("type", "")) or None
            listed = spec.get("values", [])
            values = [plain(v) for v in listed] if isinstance(listed, list) else []
            if type_name is None:
                type_name = output_type_of(values)
        else:
            type_name = str(plain(spec))
        if type_name not in OUTPUT_TYPES:
            self.unknown(
                "unknown_type",
                f"列 {column!r} 的输出类型 {type_name!r} 未知",
                where,
                type_name,
                OUTPUT_TYPES,
                f"可用：{'、'.join(OUTPUT_TYPES)}，或列出取值",
            )
            return None
        coerced: list[Any] = []
        for value in values:
            ok, converted = coerce_output(type_name, value)
            if not ok or converted is None:
                self.error(
                    "bad_output_value",
                    f"{value!r} 不是 {type_name}（输出列 {column!r}）",
                    where,
                )
                return None
            coerced.append(converted)
        return Output(column, type_name, tuple(coerced), where)

    def check_outputs(
        self,
        item: Mapping[str, Any],
        hit: str,
        aggregate: str | None,
        outputs: Mapping[str, Output],
        location: Location,
    ) -> None:
        """A priority/output_order table needs listed values to order by; an aggregation needs one output
        (a number, except for count)."""
        if hit in ORDERED_HITS and not any(o.values for o in outputs.values()):
            self.error(
                "missing_output_order",
                f"hit: {hit} 按输出值排序各行：请列出输出列的取值，优先级最高的在前",
                self.src.value_loc(item, "hit"),
                "如 outputs: {级别: [总行审批, 分行审批, 支行审批]}",
            )
        if aggregate is None:
            return
        where = self.src.value_loc(item, "aggregate")
        if len(outputs) != 1:
            self.error(
                "bad_aggregate",
                f"aggregate: {aggregate} 需要恰好一个输出列（本表有 {len(outputs)} 个）",
                where,
                "在 outputs: 下声明，如 outputs: {分数: number}",
            )
            return
        output = next(iter(outputs.values()))
        if aggregate != "count" and output.type != "number":
            self.error(
                "bad_aggregate",
                f"aggregate: {aggregate} 汇总数字，但输出列 {output.name!r} 是 {output.type}",
                where,
                "把输出列声明为 number，或用 aggregate: count",
            )

    def result_name(self, item: Mapping[str, Any], outputs: Mapping[str, Output]) -> str | None:
        if not outputs:
            if "result" in item:
                self.error(
                    "bad_value",
                    "`result:` 命名决策表输出所认定的事实，但本表没有 `outputs:`",
                    self.src.value_loc(item, "result"),
                )
            return None
        return str(plain(item.get("result", item.get("id"))))

    def output_cells(
        self, raw: Mapping[str, Any], outputs: Mapping[str, Output]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The output cells of one row (or of the default row): literal values of each output's type."""
        values: dict[str, Any] = {}
        texts: dict[str, str] = {}
        for name, output in outputs.items():
            if name not in raw:
                continue
            value = raw[name]
            ok, converted = coerce_output(output.type, value)
            where = self.src.value_loc(raw, name)
            if not ok:
                self.error(
                    "bad_output_value",
                    f"{plain(value)!r} 不是 {output.type}（输出列 {name!r}）",
                    where,
                )
                continue
            if output.values and converted is not None and output.rank(converted) == len(output.values):
                self.unknown(
                    "bad_output_value",
                    f"{converted!r} 不是输出列 {name!r} 的取值之一",
                    where,
                    converted,
                    [str(v) for v in output.values],
                    f"取值：{'、'.join(str(v) for v in output.values)}",
                )
                continue
            values[name] = converted
            texts[name] = "null" if converted is None else str(plain(value))
        return values, texts


def table_result_facts(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The facts tables with `outputs:` assert, read ahead of loading (the rules and later tables may use
    them); malformed tables are skipped here and reported when loaded."""
    facts: dict[str, dict[str, str]] = {}
    raw_tables = data.get("tables")
    if not isinstance(raw_tables, list):
        return facts
    for item in raw_tables:
        if not isinstance(item, Mapping) or not isinstance(item.get("outputs"), Mapping):
            continue
        outputs: dict[str, Output] = {}
        for name, spec in item["outputs"].items():
            if isinstance(spec, list):
                type_name = output_type_of([plain(v) for v in spec])
            elif isinstance(spec, Mapping):
                listed = spec.get("values", [])
                type_name = str(spec.get("type", "")) or output_type_of(
                    [plain(v) for v in listed] if isinstance(listed, list) else []
                )
            else:
                type_name = str(plain(spec))
            if type_name in OUTPUT_TYPES:
                outputs[str(name)] = Output(str(name), type_name)
        aggregate = item.get("aggregate")
        hit = str(item.get("hit", "first"))
        name = item.get("result", item.get("id"))
        if name is None:
            continue
        facts[str(plain(name))] = result_fields(
            hit, str(aggregate) if aggregate in AGGREGATES and hit == "collect" else None, outputs
        )
    return facts
