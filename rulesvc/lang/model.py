"""The validated, frozen model of rules folders: kinds, rulesets (rules, tables, actions)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rulesvc.errors import Location
from rulesvc.events import TICKET_EVENT_TYPES
from rulesvc.lang.ast import Expr

Bound = Decimal | datetime | date


@dataclass(frozen=True)
class FieldSpec:
    """One declared ticket field (see `rulesvc.lang.kinds`): schema type and constraints."""

    name: str
    type: str  # decimal | integer | string | enum | date | datetime | boolean | list
    enum: str | None = None
    required: bool = False
    min: Bound | None = None
    max: Bound | None = None
    min_exclusive: Bound | None = None
    max_exclusive: Bound | None = None
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    format: str | None = None
    items: str | None = None  # list items: a schema type or enum name
    location: Location | None = None
    data_class: str | None = None  # 公开 | 内部 | 敏感 | 个人信息 (None: 内部), see rulesvc.fieldclasses


@dataclass(frozen=True)
class InvalidPolicy:
    """What to do with a ticket breaking its kind's schema instead of refusing it: route it to a group."""

    assign: str


@dataclass(frozen=True)
class KindSchema:
    """A ticket kind: the condition language's view of each field (`string`, `number`, `bool`, `datetime`,
    `list` or an enum name) in `fields`, the full schema in `specs`, and the invalid-ticket policy."""

    kind: str
    fields: Mapping[str, str]
    enums: Mapping[str, tuple[str, ...]]
    location: Location
    description: str = ""
    specs: Mapping[str, FieldSpec] = field(default_factory=dict)
    invalid: InvalidPolicy | None = None


@dataclass(frozen=True)
class ParamSpec:
    """One action parameter: a literal, a field path, a `{path}` template or an `=` expression."""

    mode: str  # "literal" | "path" | "template" | "expr"
    value: Any
    expr: Expr | None = None
    parts: tuple[str | Expr, ...] = ()


@dataclass(frozen=True)
class ActionSpec:
    type: str
    params: Mapping[str, ParamSpec]
    location: Location
    duration: timedelta | None = None  # start_timer
    warnings: tuple[tuple[str, timedelta], ...] = ()  # start_timer


ENTER = "enter"
LEAVE = "leave"


@dataclass(frozen=True)
class Transition:
    """`on: [{enter: {stage: 初审}}]` (or `leave`): the rule fires on any ticket event at which the ticket's
    text field `field` becomes `value` (enter; a ticket's first value counts as entering) or stops being it
    (leave). Whether the field changed is judged in event time (`rulesvc.sla.event_time`): the engine fires
    the rule on every ticket event where the field has (enter) or no longer has (leave) the value, and the
    ticket's timer journal keeps its actions only where the change happened."""

    change: str  # ENTER | LEAVE
    field: str
    value: str
    location: Location

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.change, self.field, self.value)

    def level(self, ticket: Mapping[str, Any]) -> bool:
        """Whether `ticket` is on the side of the change the rule waits for (enter: has the value)."""
        current = ticket.get(self.field)
        if not isinstance(current, str):
            return False
        return current == self.value if self.change == ENTER else current != self.value

    def text(self) -> str:
        return f"{self.change}: {{{self.field}: {self.value}}}"


@dataclass(frozen=True)
class Rule:
    id: str
    on: tuple[str, ...]
    priority: int
    when: Expr | None
    when_text: str
    then: tuple[ActionSpec, ...]
    location: Location
    index: int
    description: str = ""
    transitions: tuple[Transition, ...] = ()

    @property
    def triggers(self) -> tuple[str, ...]:
        """The event types the rule is evaluated on: its own, and every ticket event type for a rule that
        also fires on a field change."""
        if not self.transitions:
            return self.on
        return tuple(dict.fromkeys((*self.on, *TICKET_EVENT_TYPES)))


@dataclass(frozen=True)
class Row:
    id: str
    cells: Mapping[str, Expr]  # column → cell test (subject not yet bound)
    cell_texts: Mapping[str, str]
    then: tuple[ActionSpec, ...]
    location: Location
    index: int  # 1-based; 0 for the default row
    is_default: bool = False
    outputs: Mapping[str, Any] = field(default_factory=dict)  # output column → literal value
    output_texts: Mapping[str, str] = field(default_factory=dict)


SINGLE_HIT = ("first", "unique", "any", "priority")
MULTI_HIT = ("rule_order", "output_order", "collect")
HIT_POLICIES = (*SINGLE_HIT, *MULTI_HIT)
AGGREGATES = ("sum", "min", "max", "count")
OUTPUT_TYPES = ("string", "number", "bool", "date")


@dataclass(frozen=True)
class Output:
    """An output column of a decision table: its type (`string`, `number`, `bool`, `date`) and, when the
    author lists them, its values in priority order (first = highest; `priority` and `output_order` use it)."""

    name: str
    type: str
    values: tuple[Any, ...] = ()
    location: Location | None = None

    def rank(self, value: Any) -> int:
        """Priority rank of `value` (0 = highest); values not listed rank last."""
        for position, listed in enumerate(self.values):
            if listed == value and type(listed) is type(value):
                return position
        return len(self.values)


@dataclass(frozen=True)
class Table:
    id: str
    on: tuple[str, ...]
    hit: str  # one of HIT_POLICIES
    inputs: Mapping[str, Expr]
    input_texts: Mapping[str, str]
    rows: tuple[Row, ...]
    default: Row
    location: Location
    description: str = ""
    aggregate: str | None = None  # collect only: one of AGGREGATES
    outputs: Mapping[str, Output] = field(default_factory=dict)
    result: str | None = None  # the derived fact the outputs are asserted as (tables with outputs)

    @property
    def multi_hit(self) -> bool:
        return self.hit in MULTI_HIT

    def row_ref(self, row: Row) -> str:
        return f"{self.id}#{row.id}"


@dataclass(frozen=True)
class Ruleset:
    name: str
    kind: str
    description: str
    facts: Mapping[str, Mapping[str, str]]
    tables: tuple[Table, ...]
    rules: tuple[Rule, ...]
    file: str
    content_hash: str
    version: int = 1
    source_text: str = field(default="", compare=False, repr=False)

    def rule_refs(self) -> list[str]:
        """Every rule id and table row reference, for coverage."""
        refs: list[str] = []
        for table in self.tables:
            refs.extend(table.row_ref(row) for row in (*table.rows, table.default))
        refs.extend(rule.id for rule in self.rules)
        return refs
