"""Kind files → `KindSchema`: each ticket field's type, whether it is required, and its constraints.

A field is written short (`amount: decimal`, `credit_rating: 信用评级`) or as a mapping::

    amount: {type: decimal, required: true, min: 0, max: 100000000}
    id_card: {type: string, format: cn_id_card}
    code: {type: string, max_length: 20, pattern: "^[A-Z]{2}-\\d+$"}

Types: decimal (also `number`), integer, string, enum (an `enums:` name, written directly as the type or as
`{type: enum, enum: 名称}`), date, datetime, boolean (also `bool`), list (optionally `items: <type>`).
Constraints: `min`/`max` (inclusive) and `min_exclusive`/`max_exclusive` for decimal, integer, date and
datetime; `max_length`, `pattern` (a regular expression the whole value must match) and `format` (see
`rulesvc.formats`) for strings. A kind may declare `invalid: {assign: 数据核查岗}`: tickets breaking the
schema are then decided (routed to that group, the problems listed) instead of refused with 422.

Every problem in a kind file is reported at once, positioned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rulesvc.errors import Location, RulesetError
from rulesvc.formats import FORMATS
from rulesvc.lang.model import FieldSpec, InvalidPolicy, KindSchema
from rulesvc.yamlpos import Source, load_yaml, plain, suggest, unknown_keys

KIND_KEYS = ("kind", "description", "enums", "fields", "invalid")
FIELD_KEYS = (
    "type",
    "enum",
    "required",
    "description",
    "min",
    "max",
    "min_exclusive",
    "max_exclusive",
    "max_length",
    "pattern",
    "format",
    "items",
    "class",
)
DATA_CLASSES = ("公开", "内部", "敏感", "个人信息")
"""Field classes, open to closed (`rulesvc.fieldclasses`: roles are granted classes)."""
FIELD_TYPES = ("decimal", "integer", "string", "enum", "date", "datetime", "boolean", "list")
_ALIASES = {"number": "decimal", "bool": "boolean"}
# The type the condition language sees for each schema type.
EXPR_TYPES = {
    "decimal": "number",
    "integer": "number",
    "string": "string",
    "date": "datetime",
    "datetime": "datetime",
    "boolean": "bool",
    "list": "list",
}
_ORDERED = ("decimal", "integer", "date", "datetime")
_BOUNDS = ("min", "max", "min_exclusive", "max_exclusive")


def bound_value(type_name: str, value: Any) -> Decimal | datetime | date | None:
    """A min/max written in a kind file as the field's own type, or None when it cannot be one."""
    value = plain(value)
    if isinstance(value, bool):
        return None
    if type_name in ("decimal", "integer"):
        try:
            number = Decimal(str(value).replace("_", ""))
        except InvalidOperation:
            return None
        if not number.is_finite() or (type_name == "integer" and number != number.to_integral_value()):
            return None
        return number
    if type_name == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class _KindLoader:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.errors: list[RulesetError] = []

    def error(self, code: str, message: str, location: Location, hint: str | None = None) -> None:
        self.errors.append(RulesetError(code, message, location, hint))

    def enums(self, data: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        enums: dict[str, tuple[str, ...]] = {}
        raw = data.get("enums") or {}
        if not isinstance(raw, Mapping):
            self.error("bad_value", "enums 须是 名称 → [取值] 的映射", self.src.value_loc(data, "enums"))
            return enums
        for name, values in raw.items():
            where = self.src.value_loc(raw, name)
            if not isinstance(values, list) or not values:
                self.error("bad_value", f"枚举 {name!r} 需要一个取值列表", where)
                continue
            strings = tuple(str(v) for v in values)
            if len(set(strings)) != len(strings):
                self.error("duplicate_value", f"枚举 {name!r} 有重复的取值", where)
            if str(name) in FIELD_TYPES or str(name) in _ALIASES:
                self.error("bad_value", f"枚举名 {name!r} 与字段类型同名，请换一个名字", where)
            enums[str(name)] = strings
        return enums

    def field(
        self, name: str, raw: Any, holder: Mapping[str, Any], enums: Mapping[str, Any]
    ) -> FieldSpec | None:
        src = self.src
        where = src.value_loc(holder, name)
        spec: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {"type": raw}
        if isinstance(raw, Mapping):
            self.errors += unknown_keys(src, raw, FIELD_KEYS, f"字段 {name!r} ")
        type_text = str(plain(spec.get("type", "")))
        type_name = _ALIASES.get(type_text, type_text)
        enum: str | None = None
        if type_name == "enum":
            enum = str(plain(spec.get("enum", "")))
        elif type_name not in FIELD_TYPES and type_name in enums:
            type_name, enum = "enum", type_name
        if type_name not in FIELD_TYPES:
            self.error(
                "unknown_type",
                f"字段 {name!r} 的类型 {type_text!r} 未知",
                src.value_loc(raw, "type") if isinstance(raw, Mapping) and "type" in raw else where,
                suggest(type_text, [*FIELD_TYPES, *_ALIASES, *enums])
                or f"可用：{'、'.join(FIELD_TYPES)} 或一个枚举",
            )
            return None
        if enum is not None and enum not in enums:
            self.error(
                "unknown_type",
                f"字段 {name!r}：未知枚举 {enum!r}",
                where,
                suggest(enum, enums) or f"已声明的枚举：{'、'.join(enums) or '无'}",
            )
            return None
        bounds: dict[str, Any] = {}
        for key in _BOUNDS:
            if key not in spec:
                continue
            value = bound_value(type_name, spec[key]) if type_name in _ORDERED else None
            if value is None:
                self.error(
                    "bad_value",
                    f"字段 {name!r}：{key} 须是 {type_name} 值"
                    if type_name in _ORDERED
                    else f"字段 {name!r}：{key} 只用于 decimal、integer、date 和 datetime 字段",
                    src.value_loc(spec, key),
                )
                continue
            bounds[key] = value
        if ("min" in bounds and "min_exclusive" in bounds) or ("max" in bounds and "max_exclusive" in bounds):
            self.error(
                "bad_value",
                f"字段 {name!r}：min 与 min_exclusive（max 与 max_exclusive）只能写一个",
                where,
            )
        low = bounds.get("min", bounds.get("min_exclusive"))
        high = bounds.get("max", bounds.get("max_exclusive"))
        if low is not None and high is not None and low > high:
            self.error("bad_value", f"字段 {name!r}：下限高于上限", where)
        max_length = self.max_length(name, spec, type_name)
        pattern = self.pattern(name, spec, type_name)
        fmt = spec.get("format")
        if fmt is not None and (type_name != "string" or str(fmt) not in FORMATS):
            self.error(
                "unknown_format" if type_name == "string" else "bad_value",
                f"字段 {name!r}：未知格式 {fmt!r}"
                if type_name == "string"
                else f"字段 {name!r}：format 只用于 string 字段",
                src.value_loc(spec, "format"),
                suggest(str(fmt), FORMATS) or f"formats: {', '.join(FORMATS)}",
            )
            fmt = None
        items = spec.get("items")
        if items is not None:
            items = _ALIASES.get(str(items), str(items))
            if type_name != "list" or items not in (*EXPR_TYPES, *enums) or items == "list":
                self.error(
                    "bad_value",
                    f"字段 {name!r}：items 须是 list 字段的元素类型",
                    src.value_loc(spec, "items"),
                )
                items = None
        required = spec.get("required", False)
        if not isinstance(required, bool):
            self.error(
                "bad_value",
                f"字段 {name!r}：required 须是 true 或 false",
                src.value_loc(spec, "required"),
            )
            required = False
        data_class = spec.get("class")
        if data_class is not None and str(plain(data_class)) not in DATA_CLASSES:
            self.error(
                "bad_value",
                f"字段 {name!r}：未知的字段类别 {data_class!r}",
                src.value_loc(spec, "class"),
                suggest(str(data_class), DATA_CLASSES) or f"classes: {', '.join(DATA_CLASSES)}",
            )
            data_class = None
        return FieldSpec(
            name=name,
            type=type_name,
            data_class=None if data_class is None else str(plain(data_class)),
            enum=enum,
            required=required,
            min=bounds.get("min"),
            max=bounds.get("max"),
            min_exclusive=bounds.get("min_exclusive"),
            max_exclusive=bounds.get("max_exclusive"),
            max_length=max_length,
            pattern=pattern,
            format=None if fmt is None else str(fmt),
            items=items,
            location=where,
        )

    def max_length(self, name: str, spec: Mapping[str, Any], type_name: str) -> int | None:
        if "max_length" not in spec:
            return None
        value = plain(spec["max_length"])
        if (
            type_name not in ("string", "list")
            or isinstance(value, bool)
            or not isinstance(value, int)
            or value < 1
        ):
            self.error(
                "bad_value",
                f"字段 {name!r}：max_length 须是正整数，且只用于 string 或 list 字段",
                self.src.value_loc(spec, "max_length"),
            )
            return None
        return value

    def pattern(self, name: str, spec: Mapping[str, Any], type_name: str) -> re.Pattern[str] | None:
        if "pattern" not in spec:
            return None
        text = str(plain(spec["pattern"]))
        where = self.src.value_loc(spec, "pattern")
        if type_name != "string":
            self.error("bad_value", f"字段 {name!r}：pattern 只用于 string 字段", where)
            return None
        try:
            return re.compile(text)
        except re.error as exc:
            self.error("bad_regex", f"字段 {name!r}：pattern 不是有效的正则表达式：{exc}", where)
            return None

    def invalid(self, data: Mapping[str, Any]) -> InvalidPolicy | None:
        raw = data.get("invalid")
        if raw is None:
            return None
        where = self.src.value_loc(data, "invalid")
        if not isinstance(raw, Mapping) or set(raw) != {"assign"} or not str(raw.get("assign") or "").strip():
            self.error(
                "bad_value",
                "invalid 须写成 {assign: <组>}（核查不合格工单的组）",
                where,
            )
            return None
        return InvalidPolicy(assign=str(raw["assign"]))


def load_kind(file: str, text: str) -> tuple[KindSchema | None, list[RulesetError]]:
    """One kind file; returns the schema (None when unusable) and every problem found, positioned."""
    src, errors = load_yaml(file, text)
    if src is None:
        return None, errors
    data = src.data
    if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
        return None, [RulesetError("missing_key", "工单类型文件需要 `kind: <名称>`", Location(file, 1, 1))]
    loader = _KindLoader(src)
    loader.errors += unknown_keys(src, data, KIND_KEYS, "工单类型文件")
    enums = loader.enums(data)
    specs: dict[str, FieldSpec] = {
        "kind": FieldSpec("kind", "string", required=True),
        "id": FieldSpec("id", "string", required=True),
    }
    raw_fields = data.get("fields") or {}
    if not isinstance(raw_fields, Mapping):
        loader.error("bad_value", "fields 须是映射", src.value_loc(data, "fields"))
        raw_fields = {}
    for name, raw in raw_fields.items():
        spec = loader.field(str(name), raw, raw_fields, enums)
        if spec is not None:
            if spec.name in ("kind", "id"):
                spec = FieldSpec(**{**spec.__dict__, "required": True})
            specs[spec.name] = spec
    kind = KindSchema(
        kind=str(data["kind"]),
        fields={name: spec.enum or EXPR_TYPES[spec.type] for name, spec in specs.items()},
        enums=enums,
        location=src.node_loc(data),
        description=str(data.get("description", "")),
        specs=specs,
        invalid=loader.invalid(data),
    )
    return kind, loader.errors + errors
