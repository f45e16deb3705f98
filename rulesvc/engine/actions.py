"""Turning a fired rule's action specs into output Actions (parameters resolved against the facts)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rulesvc.durations import format_duration
from rulesvc.engine.closures import compile_expr
from rulesvc.lang import TypeEnv
from rulesvc.lang.actions import CATALOGUE, DEFAULT_CALENDAR
from rulesvc.lang.model import ActionSpec, ParamSpec
from rulesvc.model import Action, to_jsonable
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.coverage import provisional_fields

Scope = Mapping[str, Any]
ParamFn = Callable[[Scope], Any]


def compile_param(param: ParamSpec, env: TypeEnv) -> ParamFn:
    if param.mode in ("path", "expr") and param.expr is not None:
        return compile_expr(param.expr, env, strict=True)
    if param.mode == "template":
        pieces: list[Callable[[Scope], Any]] = []
        for part in param.parts:
            if isinstance(part, str):
                pieces.append(_constant(part))
            else:
                pieces.append(compile_expr(part, env, strict=True))
        return lambda scope: "".join(_text(piece(scope)) for piece in pieces)
    if isinstance(param.value, Mapping) and all(isinstance(v, ParamSpec) for v in param.value.values()):
        fields = {name: compile_param(spec, env) for name, spec in param.value.items()}
        return lambda scope: {name: fn(scope) for name, fn in fields.items()}
    return _constant(param.value)


def _constant(value: Any) -> ParamFn:
    return lambda _scope: value


def _text(value: Any) -> str:
    if value is None:
        return ""
    converted = to_jsonable(value)
    return converted if isinstance(converted, str) else str(converted)


@dataclass(frozen=True)
class CompiledAction:
    """An action spec ready to run: `emit(scope, at)` → Action, or a derived fact for `assert`."""

    spec: ActionSpec
    params: Mapping[str, ParamFn]
    rule_ref: str
    calendar: BusinessCalendar | None

    @property
    def is_assert(self) -> bool:
        return self.spec.type == "assert"

    def derived_fact(self, scope: Scope) -> dict[str, Any]:
        fields = self.params["with"](scope) if "with" in self.params else {}
        return {"_t": self.params["fact"](scope), **fields}

    def emit(self, scope: Scope, at: datetime) -> Action:
        values = {name: fn(scope) for name, fn in self.params.items()}
        if self.spec.type == "start_timer" and self.calendar is not None and self.spec.duration is not None:
            values["due_at"] = self.calendar.add_working_time(at, self.spec.duration)
            values["duration"] = format_duration(self.spec.duration)
            values["calendar"] = self.calendar.name
            values["started_at"] = at
            values["warnings"] = [
                {
                    "name": name,
                    "after": format_duration(offset),
                    "at": self.calendar.add_working_time(at, offset),
                }
                for name, offset in self.spec.warnings
            ]
            points = [values["due_at"], *(warning["at"] for warning in values["warnings"])]
            values.update(provisional_fields(self.calendar, points))
        return Action(type=self.spec.type, params=values, rule=self.rule_ref)


def compile_action(
    spec: ActionSpec, env: TypeEnv, rule_ref: str, calendars: Mapping[str, BusinessCalendar]
) -> CompiledAction:
    assert spec.type in CATALOGUE
    calendar = None
    params = dict(spec.params)
    if spec.type == "start_timer":
        calendar_param = params.pop("calendar", None)
        calendar = calendars[str(calendar_param.value) if calendar_param else DEFAULT_CALENDAR]
    return CompiledAction(
        spec, {name: compile_param(p, env) for name, p in params.items()}, rule_ref, calendar
    )
