"""The fact/action model every layer shares: events in, decisions (actions + why) out.

Frozen dataclasses; pydantic stays at the boundaries. Money is Decimal, datetimes are aware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rulesvc.errors import Problem

TIMER_WARNING = "timer.warning"
TIMER_DUE = "timer.due"


@dataclass(frozen=True)
class TimerInfo:
    """What a firing timer tells the rules: `timer.name`, `timer.point` (a warning name or "due")."""

    name: str
    point: str
    due_at: datetime
    fire_at: datetime
    late_by: timedelta = timedelta(0)


@dataclass(frozen=True)
class Event:
    """A ticket event (or a timer firing, with `timer` set) to evaluate."""

    event_id: str
    type: str
    occurred_at: datetime
    ticket: Mapping[str, Any]
    timer: TimerInfo | None = None
    problems: tuple[Problem, ...] = ()
    """The ticket's schema violations, when its kind decides invalid tickets (`invalid:`) instead of
    refusing them: such an event is routed by that policy, never seen by a rule."""

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry a UTC offset")

    @property
    def kind(self) -> str:
        return str(self.ticket.get("kind", ""))

    @property
    def ticket_id(self) -> str:
        return str(self.ticket.get("id", ""))


@dataclass(frozen=True)
class Action:
    """An instruction to the ticket tool. `rule` is "ruleset/rule-id" of the rule that emitted it."""

    type: str
    params: Mapping[str, Any]
    rule: str
    on: tuple[tuple[str, str, str], ...] = ()
    """For a rule that fires on a field change (`on: [{enter: {stage: 初审}}]`): the (change, field, value)
    changes it waits for, one of which must have happened at the event in event time for the action to
    stand (`rulesvc.sla.event_time`); never part of the answer."""

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **{k: to_jsonable(v) for k, v in self.params.items()}, "rule": self.rule}


@dataclass(frozen=True)
class FiredRule:
    ruleset: str
    version: int
    rule: str
    on: tuple[tuple[str, str, str], ...] = ()
    """As `Action.on`: the field changes this firing waits for (it stands only where one happens)."""

    def to_json(self) -> dict[str, Any]:
        return {"ruleset": self.ruleset, "version": self.version, "rule": self.rule}


@dataclass(frozen=True)
class ConditionTrace:
    """One atomic condition of a fired rule, with the values it saw, e.g. `ticket.amount < 5000`."""

    text: str
    values: Mapping[str, Any]
    result: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "condition": self.text,
            "values": {k: to_jsonable(v) for k, v in self.values.items()},
            "result": self.result,
        }


@dataclass(frozen=True)
class TraceEntry:
    ruleset: str
    version: int
    rule: str
    conditions: tuple[ConditionTrace, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "version": self.version,
            "rule": self.rule,
            "conditions": [c.to_json() for c in self.conditions],
        }

    def explain(self) -> str:
        """One line a compliance officer can read."""
        parts = [
            f"{c.text} [{', '.join(f'{k}={to_jsonable(v)}' for k, v in c.values.items())}]"
            for c in self.conditions
        ]
        return f"{self.ruleset} v{self.version} / {self.rule}: " + (" 且 ".join(parts) or "无条件")


@dataclass(frozen=True)
class Decision:
    event: Event
    actions: tuple[Action, ...] = ()
    fired: tuple[FiredRule, ...] = ()
    trace: tuple[TraceEntry, ...] = field(default=(), compare=False)
    watched: Mapping[str, str] = field(default_factory=dict, compare=False)
    """The event's values of the ticket fields whose changes rules wait for (`Action.on`)."""

    def actions_json(self) -> list[dict[str, Any]]:
        return [a.to_json() for a in self.actions]

    def fired_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.fired]


def to_jsonable(value: Any) -> Any:
    """JSON-ready values: a Decimal stays itself (`rulesvc.exactjson` writes its digits, never a float
    rendering), datetimes → ISO 8601, durations → seconds; containers recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int | Decimal):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return str(value)
