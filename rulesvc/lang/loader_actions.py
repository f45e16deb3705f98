"""Loading the `then:` of rules and table rows: action names and parameters (durations, timer warnings,
calendars, channels, `assert` facts and their `with` templates), on the state every ruleset loader shares
(the positioned source, the type environment, the collected errors)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from rulesvc.durations import parse_duration
from rulesvc.errors import InvalidRulesetError, Location, RulesetError
from rulesvc.lang.actions import CATALOGUE, CHANNELS
from rulesvc.lang.ast import Expr
from rulesvc.lang.check import TypeEnv, check
from rulesvc.lang.model import ActionSpec, KindSchema, ParamSpec
from rulesvc.lang.parse import parse_expression
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.yamlpos import Source, plain, unknown_name

RESERVED_ROOTS = ("ticket", "event", "timer")
_TEMPLATE = re.compile(r"\{([^{}]+)\}")
_PATH = re.compile(r"^[^\W\d]\w*(\.[^\W\d]\w*)+$")


class ActionLoader:
    """The state of one ruleset file's loading, and the actions part of it."""

    def __init__(
        self, src: Source, kinds: Mapping[str, KindSchema], calendars: Mapping[str, BusinessCalendar]
    ) -> None:
        self.src = src
        self.kinds = kinds
        self.calendars = calendars
        self.errors: list[RulesetError] = []
        self.env: TypeEnv | None = None
        self.facts: dict[str, dict[str, str]] = {}
        self.enums: Mapping[str, tuple[str, ...]] = {}

    def unknown(
        self,
        code: str,
        message: str,
        where: Location,
        name: object,
        choices: Iterable[str],
        otherwise: str | None,
    ) -> None:
        """An unknown name, with "did you mean" the closest of `choices` (else `otherwise`) as its hint."""
        self.errors.append(unknown_name(code, message, where, name, choices, otherwise))

    def error(self, code: str, message: str, location: Location, hint: str | None = None) -> None:
        self.errors.append(RulesetError(code, message, location, hint))

    def expression(self, text: str, location: Location, *, condition: bool = False) -> Expr | None:
        try:
            expr = parse_expression(text, location)
        except InvalidRulesetError as exc:
            self.errors.extend(exc.errors)
            return None
        if self.env is not None:
            found = check(expr, self.env, location, condition=condition)
            self.errors.extend(found)
            if found:
                return None
        return expr

    def load_actions(
        self, item: Mapping[str, Any], location: Location, *, optional: bool = False
    ) -> tuple[ActionSpec, ...]:
        """The `then:` of `item`; with `optional` (a row of a table with outputs) it may be left out."""
        raw = item.get("then")
        if raw is None and optional:
            return ()
        if raw is None:
            self.error("missing_key", "缺少 `then:`（动作）", location)
            return ()
        if not isinstance(raw, list):
            raw_list = [raw]
            locations = [self.src.value_loc(item, "then")]
        else:
            raw_list = list(raw)
            locations = [self.src.item_loc(raw, i) for i in range(len(raw))]
        actions = []
        for entry, where in zip(raw_list, locations, strict=True):
            action = self.load_action(entry, where)
            if action is not None:
                actions.append(action)
        return tuple(actions)

    def load_action(self, entry: Any, where: Location) -> ActionSpec | None:
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, Mapping) or len(entry) != 1:
            self.error(
                "bad_action",
                "动作写成 `- <动作类型>: {参数}`",
                where,
                "如 - assign: {group: 费用审批岗}",
            )
            return None
        ((action_type, raw_params),) = entry.items()
        kind = CATALOGUE.get(str(action_type))
        if kind is None:
            self.unknown(
                "unknown_action",
                f"未知动作 {action_type!r}",
                self.src.key_loc(entry, action_type),
                action_type,
                CATALOGUE,
                f"可用动作：{'、'.join(CATALOGUE)}",
            )
            return None
        if action_type == "assert" and isinstance(raw_params, str):
            raw_params = {"fact": raw_params}
        raw_params = raw_params if raw_params is not None else {}
        if not isinstance(raw_params, Mapping):
            self.error("bad_action", f"{action_type} 的参数须是映射", where)
            return None
        params_loc = self.src.value_loc(entry, action_type)
        for name in kind.required:
            if name not in raw_params:
                self.error(
                    "missing_param",
                    f"动作 {action_type} 需要参数 {name!r}",
                    params_loc,
                    f"写成 {action_type}: {{{', '.join(f'{p}: ...' for p in kind.required)}}}",
                )
        allowed = (*kind.required, *kind.optional)
        params: dict[str, ParamSpec] = {}
        duration = None
        warnings: list[tuple[str, Any]] = []
        for name, value in raw_params.items():
            value_loc = self.src.value_loc(raw_params, name)
            if name not in allowed:
                self.unknown(
                    "unknown_param",
                    f"动作 {action_type} 没有参数 {name!r}",
                    self.src.key_loc(raw_params, name),
                    name,
                    allowed,
                    (f"可用参数：{'、'.join(allowed)}" if allowed else "该动作不带参数"),
                )
                continue
            if action_type == "start_timer" and name == "duration":
                duration = parse_duration(value)
                if duration is None or duration.total_seconds() <= 0:
                    self.error("bad_duration", f"不是时长：{value!r}", value_loc, "如 90m、2h、1.5h、1d")
                continue
            if action_type == "start_timer" and name == "warnings":
                warnings = self.load_warnings(value, raw_params, value_loc)
                continue
            if action_type == "start_timer" and name == "calendar" and str(value) not in self.calendars:
                self.unknown(
                    "unknown_calendar",
                    f"未知日历 {value!r}",
                    value_loc,
                    value,
                    self.calendars,
                    f"可用日历：{'、'.join(sorted(self.calendars))}",
                )
                continue
            if action_type == "notify" and name == "channels":
                self.check_channels(value, value_loc)
            if action_type == "assert" and name == "fact" and str(value) not in self.facts:
                self.unknown(
                    "unknown_fact",
                    f"事实 {value!r} 没有在 `facts:` 下声明",
                    value_loc,
                    value,
                    self.facts,
                    "请声明：facts: {事实名: {字段: 类型}}",
                )
                continue
            if action_type == "assert" and name == "with":
                params[name] = self.load_with(value, value_loc)
                continue
            params[str(name)] = self.param(value, value_loc)
        if action_type == "start_timer" and duration and any(at >= duration for _, at in warnings):
            self.error("bad_duration", "预警点须早于截止时间", params_loc)
        return ActionSpec(
            type=str(action_type),
            params=params,
            location=where,
            duration=duration,
            warnings=tuple(warnings),
        )

    def load_warnings(self, value: Any, parent: Any, where: Location) -> list[tuple[str, Any]]:
        if not isinstance(value, Mapping):
            self.error("bad_value", "warnings 须把预警点名映射到时长", where, "如 warnings: {预警: 90m}")
            return []
        result = []
        for name, text in value.items():
            duration = parse_duration(text)
            if duration is None:
                self.error("bad_duration", f"不是时长：{text!r}", self.src.value_loc(value, name))
                continue
            result.append((str(name), duration))
        return result

    def check_channels(self, value: Any, where: Location) -> None:
        channels = value if isinstance(value, list) else [value]
        for channel in channels:
            if channel not in CHANNELS:
                self.unknown(
                    "unknown_channel",
                    f"未知渠道 {channel!r}",
                    where,
                    channel,
                    CHANNELS,
                    f"可用渠道：{'、'.join(CHANNELS)}",
                )

    def load_with(self, value: Any, where: Location) -> ParamSpec:
        if not isinstance(value, Mapping):
            self.error("bad_value", "`with` 须把事实的字段映射到值", where)
            return ParamSpec("literal", {})
        fields = {str(k): self.param(v, self.src.value_loc(value, k)) for k, v in value.items()}
        return ParamSpec("literal", fields)

    def param(self, value: Any, where: Location) -> ParamSpec:
        if isinstance(value, str):
            text = str(value)
            if text.startswith("="):
                expr = self.expression(text[1:].strip(), where.shifted(0, 2))
                return ParamSpec("expr", text, expr=expr)
            roots = (*RESERVED_ROOTS, *self.facts)
            if _PATH.match(text) and text.split(".", 1)[0] in roots:
                return ParamSpec("path", text, expr=self.expression(text, where))
            if _TEMPLATE.search(text):
                parts: list[str | Expr] = []
                position = 0
                for match in _TEMPLATE.finditer(text):
                    parts.append(text[position : match.start()])
                    expr = self.expression(match.group(1).strip(), where.shifted(0, match.start() + 2))
                    if expr is not None:
                        parts.append(expr)
                    position = match.end()
                parts.append(text[position:])
                return ParamSpec("template", text, parts=tuple(p for p in parts if p != ""))
            return ParamSpec("literal", text)
        return ParamSpec("literal", plain(value))
