"""Rules folder → validated model. Collects every authoring error, positioned, instead of stopping at one.

Layout of a folder: `kinds/*.yaml`, `calendars/*.yaml`, `*.yaml` (rulesets), `cases/*.yaml` (cases; loaded by
rulesvc.cases). Ruleset files may also be checked one by one (drafts uploaded over HTTP).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rulesvc import gcpause
from rulesvc.errors import InvalidRulesetError, Location, RulesetError
from rulesvc.events import TICKET_EVENT_TYPES
from rulesvc.lang.ast import Expr, bind_subject
from rulesvc.lang.check import FieldType, TypeEnv, check
from rulesvc.lang.kinds import load_kind
from rulesvc.lang.loader_actions import RESERVED_ROOTS
from rulesvc.lang.loader_outputs import OutputLoader, table_result_facts
from rulesvc.lang.model import ENTER, LEAVE, KindSchema, Output, Row, Rule, Ruleset, Table, Transition
from rulesvc.lang.parse import parse_cell
from rulesvc.lang.tables import analyse_table
from rulesvc.model import TIMER_DUE, TIMER_WARNING
from rulesvc.sla.calendar import BusinessCalendar, always_open
from rulesvc.sla.calendar_file import load_calendar
from rulesvc.yamlpos import load_yaml, plain, unknown_keys

EVENT_TYPES = (*TICKET_EVENT_TYPES, TIMER_WARNING, TIMER_DUE)
BASE_TYPES = ("string", "number", "bool", "datetime", "list")
# Fact names also may not be "input": the engine's name for the fact each event asserts.
RESERVED_FACTS = (*RESERVED_ROOTS, "input")
RULESET_KEYS = ("ruleset", "kind", "description", "facts", "tables", "rules", "version")
RULE_KEYS = ("id", "description", "on", "priority", "when", "then")
TABLE_KEYS = ("id", "description", "on", "hit", "aggregate", "inputs", "outputs", "result", "rows", "default")


@dataclass
class RulesFolder:
    """Everything loaded from one or more folders."""

    kinds: dict[str, KindSchema] = field(default_factory=dict)
    calendars: dict[str, BusinessCalendar] = field(default_factory=dict)
    rulesets: dict[str, Ruleset] = field(default_factory=dict)
    case_files: list[Path] = field(default_factory=list)


def _collect(paths: Sequence[Path]) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    kinds: list[Path] = []
    calendars: list[Path] = []
    rulesets: list[Path] = []
    cases: list[Path] = []
    for path in paths:
        files = sorted(path.rglob("*.yaml")) + sorted(path.rglob("*.yml")) if path.is_dir() else [path]
        for file in files:
            parent = file.parent.name
            if parent == "kinds":
                kinds.append(file)
            elif parent == "calendars":
                calendars.append(file)
            elif parent == "cases":
                cases.append(file)
            else:
                rulesets.append(file)
    return kinds, calendars, rulesets, cases


def load_folder(paths: Sequence[Path]) -> tuple[RulesFolder, list[RulesetError]]:
    """Load kinds, calendars and rulesets (cases are only listed); returns every error found."""
    kind_files, calendar_files, ruleset_files, case_files = _collect(paths)
    folder = RulesFolder(case_files=case_files)
    errors: list[RulesetError] = []
    folder.calendars["24x7"] = always_open()
    for file in calendar_files:
        try:
            calendar = load_calendar(file)
        except InvalidRulesetError as exc:
            errors.extend(exc.errors)
            continue
        folder.calendars[calendar.name] = calendar
    for file in kind_files:
        kind, kind_errors = load_kind(str(file), file.read_text(encoding="utf-8"))
        errors.extend(kind_errors)
        if kind is not None:
            if kind.kind in folder.kinds:
                errors.append(
                    RulesetError("duplicate_kind", f"工单类型 {kind.kind!r} 声明了两次", kind.location)
                )
            folder.kinds[kind.kind] = kind
    for file in ruleset_files:
        ruleset, ruleset_errors = load_ruleset(
            str(file), file.read_text(encoding="utf-8"), folder.kinds, folder.calendars
        )
        errors.extend(ruleset_errors)
        if ruleset is not None:
            if ruleset.name in folder.rulesets:
                errors.append(
                    RulesetError(
                        "duplicate_ruleset",
                        f"规则集 {ruleset.name!r} 在 {folder.rulesets[ruleset.name].file} 中也有定义",
                        Location(ruleset.file, 1, 1),
                    )
                )
            folder.rulesets[ruleset.name] = ruleset
    return folder, sorted(errors, key=RulesetError.sort_key)


def load_folder_or_raise(paths: Sequence[Path]) -> RulesFolder:
    folder, errors = load_folder(paths)
    if errors:
        raise InvalidRulesetError(errors)
    return folder


def field_type(type_name: str) -> FieldType:
    if type_name in BASE_TYPES:
        return FieldType(type_name)
    return FieldType("enum", enum=type_name)


def type_env(kind: KindSchema, facts: Mapping[str, Mapping[str, str]]) -> TypeEnv:
    """Names a ruleset's expressions may use."""
    fields: dict[tuple[str, ...], FieldType] = {
        ("ticket", name): field_type(type_name) for name, type_name in kind.fields.items()
    }
    fields[("event", "type")] = FieldType("string")
    fields[("event", "id")] = FieldType("string")
    fields[("event", "occurred_at")] = FieldType("datetime")
    fields[("timer", "name")] = FieldType("string")
    fields[("timer", "point")] = FieldType("string")
    fields[("timer", "due_at")] = FieldType("datetime")
    fields[("timer", "late_by")] = FieldType("duration")
    for fact, fact_fields in facts.items():
        for name, type_name in fact_fields.items():
            fields[(fact, name)] = field_type(type_name)
    return TypeEnv(fields=fields, enums=dict(kind.enums), facts=frozenset(facts))


class _RulesetLoader(OutputLoader):
    """One ruleset file; accumulates errors in self.errors."""

    analyse = True

    def load(self) -> Ruleset | None:
        src, data = self.src, self.src.data
        if not isinstance(data, Mapping):
            self.error("bad_file", "规则集文件须是含 `ruleset:` 和 `kind:` 的映射", src.node_loc(data))
            return None
        self.errors += unknown_keys(src, data, RULESET_KEYS, "规则集")
        name = data.get("ruleset")
        if not isinstance(name, str) or not name:
            self.error("missing_key", "missing `ruleset: <name>`", src.node_loc(data))
            return None
        kind_name = data.get("kind")
        kind = self.kinds.get(str(kind_name)) if kind_name is not None else None
        if kind is None:
            self.unknown(
                "unknown_kind",
                f"未知的工单类型 {kind_name!r}",
                src.value_loc(data, "kind") if "kind" in data else src.node_loc(data),
                kind_name,
                self.kinds,
                f"已声明的工单类型：{'、'.join(sorted(self.kinds)) or '无'}",
            )
            return None
        self.enums = kind.enums
        self.declared_facts = self.load_facts(data.get("facts"), data)
        self.results: dict[str, Location] = {}
        self.facts = {**table_result_facts(data), **self.declared_facts}
        self.env = type_env(kind, self.facts)
        ids: dict[str, Location] = {}
        tables = self.load_list(data, "tables", self.load_table, ids)
        rules = self.load_list(data, "rules", self.load_rule, ids)
        if not tables and not rules and "tables" not in data and "rules" not in data:
            self.error("empty_ruleset", "规则集需要 `rules:` 或 `tables:`", src.node_loc(data))
        version = plain(data.get("version", 1))
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self.error(
                "bad_value",
                f"version 须是正整数，不能是 {version!r}",
                src.value_loc(data, "version"),
                "如 version: 3",
            )
        if self.errors:
            return None
        text = src.text
        return Ruleset(
            name=name,
            kind=kind.kind,
            description=str(data.get("description", "")),
            facts=self.facts,
            tables=tuple(t for t in tables if isinstance(t, Table)),
            rules=tuple(r for r in rules if isinstance(r, Rule)),
            file=src.file,
            content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            version=int(version),
            source_text=text,
        )

    def load_facts(self, raw: Any, data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        facts: dict[str, dict[str, str]] = {}
        if raw is None:
            return facts
        if not isinstance(raw, Mapping):
            self.error("bad_value", "facts 须把事实名映射到它的字段", self.src.value_loc(data, "facts"))
            return facts
        for name, fields in raw.items():
            if name in RESERVED_FACTS:
                self.error("reserved_name", f"{name!r} 是保留名", self.src.key_loc(raw, name))
                continue
            fact_fields: dict[str, str] = {}
            for field_name, type_name in (fields or {}).items() if isinstance(fields, Mapping) else []:
                if str(type_name) not in BASE_TYPES and str(type_name) not in self.enums:
                    self.unknown(
                        "unknown_type",
                        f"未知类型 {type_name!r}",
                        self.src.value_loc(fields, field_name),
                        type_name,
                        [*BASE_TYPES, *self.enums],
                        None,
                    )
                fact_fields[str(field_name)] = str(type_name)
            facts[str(name)] = fact_fields
        return facts

    def load_list(
        self, data: Mapping[str, Any], key: str, loader: Any, ids: dict[str, Location]
    ) -> list[Any]:
        raw = data.get(key)
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.error("bad_value", f"`{key}` 须是列表", self.src.value_loc(data, key))
            return []
        items = []
        for index, item in enumerate(raw):
            location = self.src.item_loc(raw, index)
            if not isinstance(item, Mapping):
                self.error("bad_value", f"`{key}` 的每一项须是映射", location)
                continue
            item_id = item.get("id")
            if isinstance(item_id, str | int) and str(item_id):
                id_loc = self.src.value_loc(item, "id")
                if str(item_id) in ids:
                    self.error(
                        "duplicate_id",
                        f"规则 id {str(item_id)!r} 重复（首次定义在第 {ids[str(item_id)].line} 行）",
                        id_loc,
                        "每条规则和每张决策表都需要自己的 id",
                    )
                else:
                    ids[str(item_id)] = id_loc
            else:
                self.error("missing_key", f"`{key}` 的每一项需要 `id`", location)
                continue
            items.append(loader(item, index, location))
        return items

    def load_triggers(
        self, item: Mapping[str, Any], location: Location
    ) -> tuple[tuple[str, ...], tuple[Transition, ...]]:
        """A rule's `on:`: event types, and field changes (`{enter: {stage: 初审}}`, `{leave: ...}`)."""
        raw = item.get("on")
        values = raw if isinstance(raw, list) else [raw]
        transitions = []
        for index, value in enumerate(values):
            if isinstance(value, Mapping):
                where = (
                    self.src.item_loc(raw, index) if isinstance(raw, list) else self.src.value_loc(item, "on")
                )
                transitions.extend(self.load_transition(value, where))
        if transitions and all(isinstance(v, Mapping) for v in values):
            return (), tuple(transitions)
        return self.load_on(item, location, changes=True), tuple(transitions)

    def load_transition(self, value: Mapping[str, Any], where: Location) -> list[Transition]:
        example = "例如 on: [{enter: {stage: 初审}}] 或 on: [{leave: {stage: 初审}}]"
        if len(value) != 1 or next(iter(value)) not in (ENTER, LEAVE):
            keys = "、".join(str(k) for k in value) or "（空）"
            self.error(
                "bad_transition",
                f"on 里的映射须且只须有 enter 或 leave 一个键（这里是 {keys}）",
                where,
                example,
            )
            return []
        change = str(next(iter(value)))
        fields = value[change]
        at = self.src.value_loc(value, change)
        if not isinstance(fields, Mapping) or len(fields) != 1:
            self.error(
                "bad_transition",
                f"{change} 须写成一个字段和它的值，如 {{stage: 初审}}",
                at,
                example,
            )
            return []
        name, target = next(iter(fields.items()))
        field_at = self.src.key_loc(fields, name)
        if not isinstance(target, str) or not target:
            self.error(
                "bad_transition",
                f"{change} 的值须是非空文本（字段 {name} 的取值，如 初审），这里是 {target!r}",
                self.src.value_loc(fields, name),
                example,
            )
            return []
        env = self.env
        if env is not None and "ticket" not in env.open_roots:
            texts = [path[1] for path, ftype in env.fields.items() if path[0] == "ticket" and len(path) == 2]
            if ("ticket", str(name)) not in env.fields:
                self.unknown(
                    "unknown_field",
                    f"工单没有字段 {name}（{change} 要看它的变化）",
                    field_at,
                    name,
                    texts,
                    "字段须是工单类型里声明的字段",
                )
                return []
            if env.fields[("ticket", str(name))].kind not in ("string", "enum"):
                self.error(
                    "bad_transition",
                    f"{change} 只能看文本字段的变化，字段 {name} 不是文本",
                    field_at,
                    example,
                )
                return []
        return [Transition(change, str(name), target, field_at)]

    def load_on(self, item: Mapping[str, Any], location: Location, changes: bool = False) -> tuple[str, ...]:
        """The event types of `on:` (with `changes`, field changes are left to `load_triggers`)."""
        raw = item.get("on")
        if raw is None:
            self.error(
                "missing_key",
                "缺少 `on:`（触发它的事件类型）",
                location,
                "如 on: [ticket.created]",
            )
            return ()
        values = raw if isinstance(raw, list) else [raw]
        result = []
        for index, value in enumerate(values):
            where = self.src.item_loc(raw, index) if isinstance(raw, list) else self.src.value_loc(item, "on")
            if changes and isinstance(value, Mapping):
                continue
            if value not in EVENT_TYPES:
                self.unknown(
                    "unknown_event",
                    f"未知的事件类型 {value!r}",
                    where,
                    value,
                    EVENT_TYPES,
                    f"可用：{'、'.join(EVENT_TYPES)}",
                )
            else:
                result.append(str(value))
        return tuple(result)

    def load_rule(self, item: Mapping[str, Any], index: int, location: Location) -> Rule | None:
        self.errors += unknown_keys(self.src, item, RULE_KEYS, "规则")
        on, transitions = self.load_triggers(item, location)
        when: Expr | None = None
        when_text = ""
        if item.get("when") is not None:
            when_text = self.src.block_text(item, "when") or str(item["when"]).strip()
            when = self.expression(when_text, self.src.value_loc(item, "when"), condition=True)
        priority = item.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            self.error("type_mismatch", "priority 须是整数", self.src.value_loc(item, "priority"))
            priority = 0
        then = self.load_actions(item, location)
        return Rule(
            id=str(item["id"]),
            on=on,
            priority=priority,
            when=when,
            when_text=when_text,
            then=then,
            location=location,
            index=index,
            description=str(item.get("description", "")),
            transitions=transitions,
        )

    def load_table(self, item: Mapping[str, Any], index: int, location: Location) -> Table | None:
        src = self.src
        self.errors += unknown_keys(src, item, TABLE_KEYS, "决策表")
        on = self.load_on(item, location)
        hit, aggregate = self.load_hit(item)
        raw_inputs = item.get("inputs")
        inputs: dict[str, Expr] = {}
        input_texts: dict[str, str] = {}
        if not isinstance(raw_inputs, Mapping) or not raw_inputs:
            self.error("missing_key", "决策表需要 `inputs:`（列 → 表达式）", location)
            raw_inputs = {}
        for column, text in raw_inputs.items():
            expr = self.expression(str(text), src.value_loc(raw_inputs, column))
            input_texts[str(column)] = str(text)
            if expr is not None:
                inputs[str(column)] = expr
        outputs = self.load_outputs(item, input_texts)
        self.check_outputs(item, hit, aggregate, outputs, location)
        result = self.result_name(item, outputs)
        result_at = src.value_loc(item, "result") if "result" in item else location
        if result is not None and result in RESERVED_FACTS:
            self.error("reserved_name", f"{result!r} 是保留名", result_at, "请用 `result: ...` 另起名字")
        elif result is not None and result in self.results:
            self.error(
                "duplicate_fact",
                f"决策表 {item['id']!r} 把输出认定为事实 {result!r}，与第 "
                f"{self.results[result].line} 行的决策表相同",
                result_at,
                "请给每张决策表各自的 `result:`",
            )
        if result is not None:
            self.results.setdefault(result, location)
        if result is not None and result in self.declared_facts:
            self.error(
                "duplicate_fact",
                f"决策表 {item['id']!r} 把输出认定为事实 {result!r}，而 `facts:` 也声明了它",
                result_at,
                "给决策表的结果另起名字（`result: ...`），或删除该声明",
            )
        rows: list[Row] = []
        raw_rows = item.get("rows")
        if not isinstance(raw_rows, list):
            self.error("missing_key", "决策表需要 `rows:`（行的列表）", location)
            raw_rows = []
        for row_index, raw_row in enumerate(raw_rows, start=1):
            row = self.load_row(
                raw_row, row_index, src.item_loc(raw_rows, row_index - 1), inputs, input_texts, outputs
            )
            if row is not None:
                rows.append(row)
        seen_rows: dict[str, Location] = {}
        for row in rows:
            if row.id in seen_rows:
                self.error("duplicate_id", f"行 id {row.id!r} 重复", row.location)
            seen_rows[row.id] = row.location
        raw_default = item.get("default")
        if raw_default is None:
            self.error(
                "missing_default",
                "决策表需要明确写出 `default:` 默认行",
                location,
                "写成 `default: {then: [...]}`；`default: {then: []}` 表示无匹配时什么也不做",
            )
            default = Row("默认", {}, {}, (), location, 0, True)
        else:
            default_loc = src.value_loc(item, "default")
            if not isinstance(raw_default, Mapping):
                self.error("bad_value", "default 须是含 `then:` 的映射", default_loc)
                raw_default = {}
            default_outputs, default_texts = self.output_cells(raw_default, outputs)
            default = Row(
                str(raw_default.get("id", "默认")),
                {},
                {},
                self.load_actions(raw_default, default_loc, optional=bool(outputs)),
                default_loc,
                0,
                True,
                default_outputs,
                default_texts,
            )
        table = Table(
            id=str(item["id"]),
            on=on,
            hit=hit,
            inputs=inputs,
            input_texts=input_texts,
            rows=tuple(rows),
            default=default,
            location=location,
            description=str(item.get("description", "")),
            aggregate=aggregate,
            outputs=outputs,
            result=result,
        )
        if len(inputs) == len(input_texts) and self.env is not None and self.analyse:
            self.errors.extend(analyse_table(table, self.env))
        return table

    def load_row(
        self,
        raw: Any,
        index: int,
        location: Location,
        inputs: Mapping[str, Expr],
        input_texts: Mapping[str, str],
        outputs: Mapping[str, Output],
    ) -> Row | None:
        if not isinstance(raw, Mapping):
            self.error("bad_value", "一行是 列 → 单元格 的映射，外加 `then:`", location)
            return None
        cells: dict[str, Expr] = {}
        texts: dict[str, str] = {}
        for key, value in raw.items():
            if key in ("id", "then") or key in outputs:
                continue
            cell_loc = self.src.value_loc(raw, key)
            if key not in input_texts:
                self.unknown(
                    "unknown_column",
                    f"未知的列 {key!r}",
                    self.src.key_loc(raw, key),
                    key,
                    input_texts,
                    f"列：{'、'.join([*input_texts, *outputs])}",
                )
                continue
            text = _cell_text(value)
            try:
                cell = parse_cell(text, cell_loc)
            except InvalidRulesetError as exc:
                self.errors.extend(exc.errors)
                continue
            subject = inputs.get(str(key))
            if subject is not None and self.env is not None:
                found = check(bind_subject(cell, subject), self.env, cell_loc)
                if found:
                    self.errors.extend(found)
                    continue
            cells[str(key)] = cell
            texts[str(key)] = text
        then = self.load_actions(raw, location, optional=bool(outputs))
        values, value_texts = self.output_cells(raw, outputs)
        return Row(
            str(raw.get("id", f"行{index}")),
            cells,
            texts,
            then,
            location,
            index,
            outputs=values,
            output_texts=value_texts,
        )


def _cell_text(value: Any) -> str:
    """YAML scalars of a table cell as the text risk staff wrote (YAML turns `true` into a bool)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(plain(value))


def load_ruleset(
    file: str,
    text: str,
    kinds: Mapping[str, KindSchema],
    calendars: Mapping[str, BusinessCalendar],
    *,
    analyse: bool = True,
) -> tuple[Ruleset | None, list[RulesetError]]:
    """Load and validate one ruleset file against the declared kinds and calendars. Without `analyse`, the
    static analysis of tables (rows never reached, overlaps it can prove) is skipped: `rulesvc dmn eval`
    judges a DMN table as DMN does, by the rows that match the inputs given."""
    with gcpause.paused():  # half of a large file's load time was the collector's (rulesvc.gcpause)
        src, errors = load_yaml(file, text)
        if src is None:
            return None, errors
        loader = _RulesetLoader(src, kinds, calendars)
        loader.analyse = analyse
        ruleset = loader.load()
    return ruleset, sorted(loader.errors, key=RulesetError.sort_key)


def load_ruleset_sources(
    sources: Mapping[str, tuple[str, int]],
    kinds: Mapping[str, KindSchema],
    calendars: Mapping[str, BusinessCalendar],
) -> tuple[dict[str, Ruleset], list[RulesetError]]:
    """Rulesets from texts (name → (YAML, version)), e.g. versions stored in the database."""
    rulesets: dict[str, Ruleset] = {}
    errors: list[RulesetError] = []
    for name, (text, version) in sources.items():
        ruleset, found = load_ruleset(f"{name}.yaml", text, kinds, calendars)
        errors.extend(found)
        if ruleset is None:
            continue
        if ruleset.name != name:
            errors.append(
                RulesetError(
                    "name_mismatch",
                    f"文件中写的是 `ruleset: {ruleset.name}`，但它保存为 {name!r}",
                    Location(ruleset.file, 1, 1),
                )
            )
            continue
        rulesets[name] = replace(ruleset, version=version)
    return rulesets, sorted(errors, key=RulesetError.sort_key)
