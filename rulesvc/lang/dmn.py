"""DMN 1.3–1.5 decision tables → a kind and a ruleset of our language (`rulesvc dmn import`, `dmn eval`).

The supported subset, translated exactly and nothing else (anything outside it is an error positioned at
the construct, naming it): input data of simple types (string, number, boolean, date, or an item
definition of one of them) become the kind's fields; each decision's decision table becomes a table with
outputs, asserted as a derived fact, evaluated after the decisions it requires (so they chain through
facts). Input expressions are names (an input, a required decision, `Decision.component`); input entries
are S-FEEL unary tests (`-`, comparisons, `[a..b]`/`(a..b)`/`]a..b[`, lists, `not(...)`, strings, numbers,
booleans, `null`, `date("…")`); output entries are literals. Hit policies: all of DMN's, aggregations
SUM/MIN/MAX/COUNT.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from rulesvc.errors import InvalidRulesetError, Location, RulesetError
from rulesvc.lang.ast import KEYWORDS
from rulesvc.lang.dmn_xml import Node, parse_xml

HITS = {
    "UNIQUE": "unique",
    "ANY": "any",
    "PRIORITY": "priority",
    "FIRST": "first",
    "RULE ORDER": "rule_order",
    "OUTPUT ORDER": "output_order",
    "COLLECT": "collect",
}
AGGREGATIONS = {"SUM": "sum", "MIN": "min", "MAX": "max", "COUNT": "count"}
SIMPLE_TYPES = {"string": "string", "number": "number", "boolean": "bool", "date": "date"}
KIND_TYPES = {"string": "string", "number": "decimal", "bool": "boolean", "date": "date"}
UNSUPPORTED = {
    "literalExpression": "literal expression",
    "context": "boxed context",
    "invocation": "invocation",
    "functionDefinition": "function definition",
    "relation": "relation",
    "list": "boxed list",
    "conditional": "conditional",
    "filter": "filter",
    "iterator": "iterator",
    "for": "for",
    "every": "every",
    "some": "some",
}
RESERVED_FIELDS = ("kind", "id")


@dataclass
class DmnOutput:
    name: str  # DMN name (for eval's JSON)
    field: str  # our fact field


@dataclass
class DmnDecision:
    name: str
    fact: str
    table_id: str
    hit: str
    aggregate: str | None
    outputs: list[DmnOutput]
    single_output_unnamed: bool = False


@dataclass
class DmnModel:
    """What an import produced: the files' texts and the names each DMN name became."""

    kind: str
    ruleset: str
    kind_yaml: str
    ruleset_yaml: str
    inputs: dict[str, str] = field(default_factory=dict)  # DMN input data name → ticket field
    decisions: dict[str, DmnDecision] = field(default_factory=dict)


def identifier(name: str, taken: set[str]) -> str:
    """A DMN name (`Approval Status`, `Approved/Declined`) as a name of our language, unique in `taken`."""
    text = re.sub(r"\W+", "_", name.strip()).strip("_") or "x"
    if text[0].isdigit():
        text = "_" + text
    if text in KEYWORDS or text in RESERVED_FIELDS:
        text += "_"
    candidate, n = text, 2
    while candidate in taken:
        candidate, n = f"{text}_{n}", n + 1
    taken.add(candidate)
    return candidate


# ---------------------------------------------------------------- S-FEEL unary tests and literals

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>\d+(?:\.\d+)?|\.\d+)
      | (?P<op><=|>=|!=|<|>|=)
      | (?P<dots>\.\.)
      | (?P<punct>[\[\]\(\),\-])
      | (?P<name>[^\W\d][\w]*)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)


class FeelError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass
class _Tok:
    kind: str
    text: str
    offset: int


def _tokens(text: str) -> list[_Tok]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            break
        kind = match.lastgroup or "other"
        tokens.append(_Tok(kind, match.group(kind), match.start(kind)))
        position = match.end()
    return tokens


class _Feel:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, text: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise FeelError(f"表达式不完整（需要 {text or '一个值'}）", len(self.text))
        if text is not None and tok.text != text:
            raise FeelError(f"需要 {text!r}，这里是 {tok.text!r}", tok.offset)
        self.i += 1
        return tok

    def end(self) -> None:
        tok = self.peek()
        if tok is not None:
            raise FeelError(self.unsupported(tok), tok.offset)

    def unsupported(self, tok: _Tok) -> str:
        if tok.kind == "name" and tok.text not in ("true", "false", "null", "date", "not"):
            following = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if following is not None and following.text == "(":
                return f'不支持 FEEL 函数调用 {tok.text}(...)（只支持 S-FEEL：比较、区间、列表、not(...)、字面值、date("…")）'
            return f"不支持 FEEL 名称或表达式 {tok.text!r}（单元格只能是与字面值比较的 S-FEEL 测试）"
        if tok.text in ("+", "*", "/", "-"):
            return f"不支持 FEEL 算术 {tok.text!r}（单元格只能是与字面值比较的 S-FEEL 测试）"
        return f"不支持的 FEEL 写法 {tok.text!r}（只支持 S-FEEL：比较、区间、列表、not(...)、字面值）"

    def literal(self) -> str:
        """One endpoint / literal, as our cell syntax writes it."""
        tok = self.take()
        if tok.kind == "string":
            return tok.text
        if tok.kind == "number":
            return tok.text
        if tok.text == "-":
            number = self.take()
            if number.kind != "number":
                raise FeelError(f"'-' 后面需要数字，这里是 {number.text!r}", number.offset)
            return "-" + number.text
        if tok.text in ("true", "false", "null"):
            return tok.text
        if tok.text == "date":
            self.take("(")
            value = self.take()
            if value.kind != "string" or not re.fullmatch(r'"\d{4}-\d{2}-\d{2}"', value.text):
                raise FeelError('date(...) 只支持 date("YYYY-MM-DD")', value.offset)
            self.take(")")
            return value.text
        self.i -= 1
        raise FeelError(self.unsupported(tok), tok.offset)

    def positive(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None:
            raise FeelError("空的测试", len(self.text))
        if tok.kind == "op":
            self.i += 1
            op = "==" if tok.text == "=" else tok.text
            return ("cmp", (op, self.literal()))
        if tok.text in ("[", "(", "]"):
            self.i += 1
            low = self.literal()
            self.take("..")
            high = self.literal()
            close = self.take()
            if close.text not in ("]", ")", "["):
                raise FeelError(f"区间需要以 ] 或 ) 结束，这里是 {close.text!r}", close.offset)
            return ("range", (tok.text == "[", low, high, close.text == "]"))
        return ("cmp", ("==", self.literal()))

    def tests(self) -> list[tuple[str, Any]]:
        found = [self.positive()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.i += 1
            found.append(self.positive())
        return found


def _positive_cell(test: tuple[str, Any]) -> str:
    kind, value = test
    if kind == "cmp":
        op, literal = value
        return literal if op == "==" else f"{op} {literal}"
    low_in, low, high, high_in = value
    return f"{'[' if low_in else '('}{low}..{high}{']' if high_in else ')'}"


_NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _negated_cell(tests: list[tuple[str, Any]], offset: int) -> str:
    if len(tests) == 1 and tests[0][0] == "range":
        low_in, low, high, high_in = tests[0][1]
        return f"{'<' if low_in else '<='} {low}, {'>' if high_in else '>='} {high}"
    parts = []
    for kind, value in tests:
        if kind == "range":
            raise FeelError("不支持 not(...) 里区间与其他测试并列（请拆成几行）", offset)
        op, literal = value
        parts.append(f"{_NEGATED[op]} {literal}")
    return " and ".join(parts)


def unary_tests_to_cell(text: str) -> str:
    """An S-FEEL input entry as our cell text; FeelError (with an offset into `text`) outside S-FEEL."""
    stripped = text.strip()
    if stripped in ("", "-"):
        return "-"
    feel = _Feel(text)
    first = feel.peek()
    if first is not None and first.text == "not":
        following = feel.tokens[1] if len(feel.tokens) > 1 else None
        if following is not None and following.text == "(":
            feel.i = 2
            tests = feel.tests()
            feel.take(")")
            feel.end()
            return _negated_cell(tests, first.offset)
    tests = feel.tests()
    feel.end()
    return ", ".join(_positive_cell(t) for t in tests)


def literal_value(text: str) -> Any:
    """An output entry: a literal only (number, string, boolean, null, date("…"))."""
    feel = _Feel(text)
    if feel.peek() is None:
        return None
    literal = feel.literal()
    feel.end()
    if literal.startswith('"'):
        decoded: Any = yaml.safe_load(literal)  # JSON-compatible escapes
        return str(decoded)
    if literal in ("true", "false"):
        return literal == "true"
    if literal == "null":
        return None
    return _Number(literal)


class _Number(str):
    """A number's text, written unquoted in YAML (exact digits kept)."""


# ---------------------------------------------------------------- the importer


class _Importer:
    def __init__(self, file: str, root: Node) -> None:
        self.file = file
        self.root = root
        self.errors: list[RulesetError] = []
        self.enums: dict[str, list[str]] = {}  # ticket field → the values a table's inputValues list
        self.items: dict[str, Node] = {n.attrs.get("name", ""): n for n in root.all("itemDefinition")}
        self.by_id: dict[str, Node] = {}
        for node in root.walk():
            if "id" in node.attrs:
                self.by_id[node.attrs["id"]] = node

    def error(
        self, node: Node | Location, message: str, hint: str | None = None, code: str = "dmn.unsupported"
    ) -> None:
        where = node if isinstance(node, Location) else node.location
        self.errors.append(RulesetError(code, message, where, hint))

    def simple_type(self, type_ref: str | None, node: Node) -> tuple[str, list[Any]] | None:
        """(our output type, allowed values) of a typeRef naming a simple type or an item definition of one."""
        if type_ref is None or type_ref == "":
            return "string", []
        base = type_ref.split(".")[-1] if type_ref.startswith("feel:") else type_ref
        if base in SIMPLE_TYPES:
            return SIMPLE_TYPES[base], []
        item = self.items.get(type_ref)
        if item is None:
            self.error(
                node, f"不支持的类型 {type_ref!r}（只支持 string、number、boolean、date 及其 itemDefinition）"
            )
            return None
        if item.all("itemComponent"):
            return None  # structured: the caller decides
        if item.attrs.get("isCollection") == "true":
            return None
        inner = item.child_text("typeRef")
        resolved = self.simple_type(inner.strip() if inner else None, item)
        if resolved is None:
            return None
        return resolved[0], self.allowed(item)

    def allowed(self, node: Node) -> list[Any]:
        return self.listed(node.first("allowedValues"))

    def listed(self, allowed: Node | None) -> list[Any]:
        """The values of an `allowedValues`/`outputValues` list of literals ([] when it is anything else)."""
        if allowed is None:
            return []
        text = allowed.child_text("text") or ""
        try:
            cell = unary_tests_to_cell(text)
        except FeelError:
            return []
        values: list[Any] = []
        for part in cell.split(","):
            part = part.strip()
            if not part or part[0] in "<>![(" or part == "-":
                return []
            values.append(literal_value(part))
        return values

    def load(self) -> DmnModel:
        model_name = self.root.attrs.get("name", "dmn")
        taken_names: set[str] = set()
        kind = identifier(model_name, set())
        ruleset = kind
        fields: dict[str, str] = {}
        inputs: dict[str, str] = {}
        taken_fields: set[str] = set()
        for node in self.root.all("inputData"):
            name = node.attrs.get("name", "")
            variable = node.first("variable")
            type_ref = variable.attrs.get("typeRef") if variable is not None else None
            item = self.items.get(type_ref or "")
            if item is not None and item.all("itemComponent") and item.attrs.get("isCollection") != "true":
                self.structure(name, item, inputs, fields, taken_fields)
                continue
            resolved = self.simple_type(type_ref, variable or node)
            if resolved is None:
                self.error(
                    node,
                    f"输入数据 {name!r} 的类型 {type_ref!r} 是集合或多层结构，不在支持范围内"
                    "（只支持 string、number、boolean、date，及由它们组成的一层结构）",
                )
                continue
            self.add_field(name, resolved, inputs, fields, taken_fields)
        for tag, what in (
            ("businessKnowledgeModel", "business knowledge model"),
            ("decisionService", "decision service"),
        ):
            for node in self.root.all(tag):
                self.error(node, f"不支持 {what}（{tag} {node.attrs.get('name', '')!r}）：只导入决策表")
        decisions = self.root.all("decision")
        order = self.order(decisions)
        model = DmnModel(kind, ruleset, "", "", inputs)
        tables: list[dict[str, Any]] = []
        for node in order:
            table = self.decision(node, model, taken_names)
            if table is not None:
                tables.append(table)
        if self.errors:
            raise InvalidRulesetError(sorted(self.errors, key=RulesetError.sort_key))
        enums = {name: values for name, values in self.enums.items() if fields.get(name) == "string"}
        kind_data: dict[str, Any] = {"kind": kind, "description": f"DMN {model_name} 的输入数据"}
        if enums:
            kind_data["enums"] = enums
        kind_data["fields"] = {"id": "string", **{n: (n if n in enums else t) for n, t in fields.items()}}
        model.kind_yaml = _dump(kind_data)
        model.ruleset_yaml = _dump(
            {
                "ruleset": ruleset,
                "kind": kind,
                "description": (self.root.child_text("description") or "").strip()
                or f"由 DMN 模型 {model_name} 导入（rulesvc dmn import）",
                "tables": tables,
            }
        )
        return model

    def add_field(
        self,
        name: str,
        resolved: tuple[str, list[Any]],
        inputs: dict[str, str],
        fields: dict[str, str],
        taken: set[str],
    ) -> None:
        field_name = identifier(name, taken)
        inputs[name] = field_name
        fields[field_name] = KIND_TYPES[resolved[0]]
        if resolved[1] and all(isinstance(v, str) for v in resolved[1]):
            self.enums[field_name] = [str(v) for v in resolved[1]]

    def structure(
        self, name: str, item: Node, inputs: dict[str, str], fields: dict[str, str], taken: set[str]
    ) -> None:
        """A structured input (one level of simple components): one field per component, `Name.Component`
        in input expressions; `dmn eval` takes it as a JSON object."""
        for component in item.all("itemComponent"):
            part = component.attrs.get("name", "")
            inner = component.child_text("typeRef")
            resolved = None
            if component.attrs.get("isCollection") != "true" and not component.all("itemComponent"):
                resolved = self.simple_type(inner.strip() if inner else None, component)
                if resolved is not None and not resolved[1]:
                    resolved = (resolved[0], self.allowed(component))
            if resolved is None:
                self.error(
                    component,
                    f"输入数据 {name!r} 的组成部分 {part!r} 是集合或嵌套结构，不在支持范围内",
                )
                continue
            self.add_field(f"{name}.{part}", resolved, inputs, fields, taken)

    def requirements(self, node: Node) -> list[Node]:
        found = []
        for requirement in node.all("informationRequirement"):
            ref = requirement.first("requiredDecision")
            if ref is not None:
                target = self.by_id.get(ref.attrs.get("href", "").lstrip("#"))
                if target is not None:
                    found.append(target)
        for requirement in node.all("knowledgeRequirement"):
            self.error(requirement, "不支持 knowledgeRequirement（业务知识模型调用）：只导入决策表")
        return found

    def order(self, decisions: list[Node]) -> list[Node]:
        """Decisions after those they require (tables run in order, so facts chain)."""
        done: list[Node] = []
        visiting: set[int] = set()

        def visit(node: Node) -> None:
            if node in done:
                return
            if id(node) in visiting:
                self.error(node, f"决策 {node.attrs.get('name')!r} 循环依赖", code="dmn.cycle")
                return
            visiting.add(id(node))
            for required in self.requirements(node):
                visit(required)
            visiting.discard(id(node))
            done.append(node)

        for node in decisions:
            visit(node)
        return done

    def input_expression(self, text: str, where: Location, model: DmnModel) -> str | None:
        name = text.strip()
        if name in model.inputs:
            return f"ticket.{model.inputs[name]}"
        if name in model.decisions:
            decision = model.decisions[name]
            if (
                len(decision.outputs) == 1
                and decision.aggregate is None
                and decision.hit
                not in (
                    "rule_order",
                    "output_order",
                    "collect",
                )
            ):
                return f"{decision.fact}.{decision.outputs[0].field}"
        head, _, tail = name.rpartition(".")
        if head in model.decisions:
            decision = model.decisions[head]
            for output in decision.outputs:
                if output.name == tail:
                    return f"{decision.fact}.{output.field}"
        self.error(
            where,
            f"输入表达式 {name!r} 不是输入数据、所需决策（单值）或 决策.输出 的名称："
            "不支持 FEEL 表达式作输入列",
        )
        return None

    def decision(self, node: Node, model: DmnModel, taken: set[str]) -> dict[str, Any] | None:
        name = node.attrs.get("name", "")
        table = node.first("decisionTable")
        if table is None:
            other = next((c for c in node.children if c.tag in UNSUPPORTED), None)
            what = UNSUPPORTED[other.tag] if other is not None else "没有决策逻辑"
            self.error(other or node, f"决策 {name!r} 的逻辑是 {what}，不在支持范围内：只导入决策表")
            return None
        for attr in ("preferredOrientation", "orientation"):
            value = table.attrs.get(attr)
            if value is not None and value != "Rule-as-Row":
                self.error(table, f"不支持 {attr}={value!r} 的决策表（只支持 Rule-as-Row）")
        hit_text = table.attrs.get("hitPolicy", "UNIQUE")
        hit = HITS.get(hit_text)
        if hit is None:
            self.error(table, f"未知的命中策略 hitPolicy={hit_text!r}")
            return None
        aggregate = None
        if "aggregation" in table.attrs:
            aggregate = AGGREGATIONS.get(table.attrs["aggregation"])
            if aggregate is None or hit != "collect":
                self.error(
                    table, f"不支持的汇总 aggregation={table.attrs['aggregation']!r}（命中策略 {hit_text}）"
                )
                return None
        fact = identifier(name, taken)
        table_id = table.attrs.get("label") or fact
        decision = DmnDecision(name, fact, table_id, hit, aggregate, [])
        variable = node.first("variable")
        type_ref = (variable.attrs.get("typeRef") if variable is not None else None) or table.attrs.get(
            "typeRef"
        )
        components: dict[str, Node] = {}
        item = self.items.get(type_ref or "")
        if item is not None:
            components = {c.attrs.get("name", ""): c for c in item.all("itemComponent")}
        inputs: dict[str, str] = {}
        columns: list[str] = []
        taken_columns: set[str] = set()
        for input_node in table.all("input"):
            expression = input_node.first("inputExpression")
            text_node = expression.first("text") if expression is not None else None
            if text_node is None:
                self.error(input_node, "输入列没有 inputExpression/text")
                return None
            label = input_node.attrs.get("label") or text_node.text.strip()
            column = identifier(label, taken_columns)
            subject = self.input_expression(
                text_node.text, text_node.text_location or text_node.location, model
            )
            if subject is None:
                return None
            inputs[column] = subject
            columns.append(column)
            listed = self.listed(input_node.first("inputValues"))
            if subject.startswith("ticket.") and listed and all(isinstance(v, str) for v in listed):
                self.enums.setdefault(subject.removeprefix("ticket."), [str(v) for v in listed])
        outputs: dict[str, Any] = {}
        output_nodes = table.all("output")
        taken_fields: set[str] = set(taken_columns)
        for output_node in output_nodes:
            out_name = output_node.attrs.get("name") or (name if len(output_nodes) == 1 else "")
            if not out_name:
                self.error(output_node, "有多个输出列的决策表，每个输出列都需要 name")
                return None
            type_ref_out = output_node.attrs.get("typeRef")
            component = components.get(out_name)
            if type_ref_out is None and component is not None:
                type_ref_out = component.child_text("typeRef")
            if type_ref_out is None and len(output_nodes) == 1:
                type_ref_out = type_ref
            resolved = self.simple_type(type_ref_out.strip() if type_ref_out else None, output_node)
            if resolved is None:
                if not type_ref_out or type_ref_out.strip() not in self.items:
                    return None
                element = self.items[type_ref_out.strip()]
                base = element.child_text("typeRef")
                resolved = (SIMPLE_TYPES.get((base or "string").strip(), "string"), self.allowed(element))
            out_type, values = resolved
            listed_node = output_node.first("outputValues")
            if listed_node is not None:
                values = self.listed(listed_node)
            elif component is not None and not values:
                values = self.allowed(component)
            field_name = identifier(out_name, taken_fields)
            decision.outputs.append(DmnOutput(out_name, field_name))
            outputs[field_name] = [_yaml_value(v) for v in values] if values else out_type
            if values and out_type != "string":
                outputs[field_name] = {"type": out_type, "values": [_yaml_value(v) for v in values]}
        decision.single_output_unnamed = len(output_nodes) == 1
        rows: list[dict[str, Any]] = []
        row_ids: set[str] = set()
        for index, rule in enumerate(table.all("rule"), start=1):
            described = (rule.child_text("description") or "").strip()
            row_id = (
                described
                if described and described not in row_ids and "\n" not in described
                else f"行{index}"
            )
            row_ids.add(row_id)
            row: dict[str, Any] = {"id": row_id}
            entries = rule.all("inputEntry")
            if len(entries) != len(columns):
                self.error(rule, f"规则有 {len(entries)} 个 inputEntry，表有 {len(columns)} 个输入列")
                continue
            for column, entry in zip(columns, entries, strict=True):
                text_node = entry.first("text")
                text = text_node.text if text_node is not None else "-"
                try:
                    cell = unary_tests_to_cell(text)
                except FeelError as exc:
                    self.error(
                        self.at(text_node or entry, text, exc.offset), f"输入条目 {text.strip()!r}：{exc}"
                    )
                    continue
                if cell != "-":
                    row[column] = cell
            out_entries = rule.all("outputEntry")
            if len(out_entries) != len(decision.outputs):
                self.error(
                    rule, f"规则有 {len(out_entries)} 个 outputEntry，表有 {len(decision.outputs)} 个输出列"
                )
                continue
            for output, entry in zip(decision.outputs, out_entries, strict=True):
                text_node = entry.first("text")
                text = text_node.text if text_node is not None else ""
                try:
                    row[output.field] = _yaml_value(literal_value(text))
                except FeelError as exc:
                    self.error(
                        self.at(text_node or entry, text, exc.offset),
                        f"输出条目 {text.strip()!r} 不是字面值：{exc}",
                    )
            rows.append(row)
        default: dict[str, Any] = {"then": []}
        for output, output_node in zip(decision.outputs, output_nodes, strict=True):
            default_node = output_node.first("defaultOutputEntry")
            if default_node is not None:
                text = default_node.child_text("text") or ""
                try:
                    default[output.field] = _yaml_value(literal_value(text))
                except FeelError as exc:
                    self.error(default_node, f"默认输出 {text.strip()!r} 不是字面值：{exc}")
        model.decisions[name] = decision
        result: dict[str, Any] = {
            "id": table_id,
            "description": (node.child_text("description") or "").strip(),
            "on": ["ticket.created"],
            "hit": hit,
        }
        if aggregate is not None:
            result["aggregate"] = aggregate
        result.update(inputs=inputs, outputs=outputs)
        if table_id != fact:
            result["result"] = fact
        result.update(rows=rows, default=default)
        return result

    def at(self, node: Node, text: str, offset: int) -> Location:
        where = node.text_location or node.location
        stripped_offset = len(text) - len(text.lstrip())
        before = text[stripped_offset : max(offset, stripped_offset)]
        if "\n" in before:
            return where
        return where.shifted(0, 1 + offset - stripped_offset)


def _yaml_value(value: Any) -> Any:
    """Numbers are written as their text (the loader reads them as exact decimals)."""
    return str(value) if isinstance(value, _Number) else value


def _dump(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000)


def import_dmn(file: str, text: str) -> DmnModel:
    """Translate a DMN file; InvalidRulesetError lists every construct outside the subset, positioned."""
    root = parse_xml(file, text)
    if root.tag != "definitions":
        raise InvalidRulesetError(
            [
                RulesetError(
                    "dmn.not_dmn", f"不是 DMN 文件：根元素是 <{root.tag}>，应为 <definitions>", root.location
                )
            ]
        )
    return _Importer(file, root).load()
