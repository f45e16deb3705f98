"""Every event checked against its ticket kind before anything else: all problems at once, one meaning per value.

`read_event` turns an untrusted JSON body (parsed by `rulesvc.exactjson`, so numbers are Decimals from their
text) into an `Event` whose ticket holds one value per meaning: decimal and integer fields are `Decimal`
(a plain decimal string such as `"6000000.00"` is the same value as the number), datetime fields are aware
`datetime`s, enum values are exact members. Anything else is a problem with a dotted path, a stable code and
a Chinese message; every problem of the body is listed, none is silently defaulted.

Beyond the kind's schema: `occurred_at` lies in a configurable range (default 2000-01-01 … now + 1 year),
every number of the ticket has a magnitude limit (default |x| ≤ 10^15, at most 34 significant digits) unless
its field declares both bounds, and date/datetime fields lie within 1900 … 2200 unless they declare bounds.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from rulesvc.errors import InvalidEventError, Problem
from rulesvc.events import MAX_EVENT_ID, TICKET_EVENT_TYPES, TIME_MESSAGES, parse_instant
from rulesvc.formats import FORMATS
from rulesvc.lang.model import FieldSpec, InvalidPolicy, KindSchema
from rulesvc.model import Event

MAX_DIGITS: Final = 34  # the decimal context of the condition language
_PRINTABLE: Final = re.compile(r"^[^\x00-\x1f\x7f]+$")
_PLAIN_DECIMAL: Final = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_FIELD_EARLIEST: Final = datetime(1900, 1, 1, tzinfo=UTC)
_FIELD_LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC)
_ENVELOPE_KEYS: Final = ("event_id", "type", "occurred_at", "at", "ticket")


@dataclass(frozen=True)
class Limits:
    """Ranges every event must respect (`Settings` builds them; defaults for tools and tests)."""

    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    ahead: timedelta = timedelta(days=366)
    max_number: Decimal = Decimal(10) ** 15


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True)
class CheckedEvent:
    """A readable event; `problems` are its ticket's schema violations, tolerated only under `policy`."""

    event: Event
    problems: tuple[Problem, ...] = ()
    policy: InvalidPolicy | None = None


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _time_text(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class _Checker:
    def __init__(self, limits: Limits, now: datetime) -> None:
        self.limits = limits
        self.now = now
        self.problems: list[Problem] = []

    def fail(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(path, code, message))

    # -- envelope -------------------------------------------------------------------------------------

    def envelope(
        self, body: Any, default_id: bool
    ) -> tuple[str, str, datetime | None, Mapping[str, Any] | None]:
        if not isinstance(body, Mapping):
            self.fail("", "validation.not_an_object", "事件必须是 JSON 对象")
            return "", "", None, None
        for key in body:
            if key not in _ENVELOPE_KEYS:
                self.fail(
                    str(key),
                    "validation.unknown_field",
                    f"未知字段 {key!r}（事件只有 event_id、type、occurred_at、ticket）",
                )
        event_id = body.get("event_id")
        if event_id is None and default_id:
            event_id = str(uuid.uuid4())
        if not isinstance(event_id, str) or not event_id:
            self.fail("event_id", "validation.required", "缺少 event_id（非空字符串）")
        elif len(event_id) > MAX_EVENT_ID or not _PRINTABLE.match(event_id):
            self.fail(
                "event_id", "validation.bad_identifier", f"event_id 应为不超过 {MAX_EVENT_ID} 个可打印字符"
            )
        etype = body.get("type")
        if etype not in TICKET_EVENT_TYPES:
            hint = difflib.get_close_matches(str(etype), TICKET_EVENT_TYPES, n=1, cutoff=0.5)
            self.fail(
                "type",
                "validation.required" if etype is None else "validation.not_in_enum",
                f"事件类型应为 {'、'.join(TICKET_EVENT_TYPES)} 之一"
                + (f"；是否应为 {hint[0]}？" if hint else ""),
            )
        occurred_at = self.occurred_at(body)
        ticket = body.get("ticket")
        if not isinstance(ticket, Mapping):
            self.fail(
                "ticket",
                "validation.required" if ticket is None else "validation.not_an_object",
                "缺少 ticket 对象",
            )
            ticket = None
        return (event_id if isinstance(event_id, str) else ""), str(etype), occurred_at, ticket

    def occurred_at(self, body: Mapping[str, Any]) -> datetime | None:
        raw = body.get("occurred_at", body.get("at"))
        if raw is None:
            self.fail("occurred_at", "validation.required", "缺少 occurred_at（事件发生时间）")
            return None
        parsed = parse_instant(raw)
        if isinstance(parsed, str):
            self.fail("occurred_at", parsed, TIME_MESSAGES[parsed])
            return None
        latest = self.now + self.limits.ahead
        if not self.limits.earliest <= parsed <= latest:
            self.fail(
                "occurred_at",
                "validation.time_out_of_range",
                f"事件时间 {_show(raw)} 超出可接受范围 {_time_text(self.limits.earliest)} … {_time_text(latest)}",
            )
            return None
        return parsed

    # -- ticket ---------------------------------------------------------------------------------------

    def ticket(self, ticket: Mapping[str, Any], kind: KindSchema) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, raw in ticket.items():
            spec = kind.specs.get(str(name))
            path = f"ticket.{name}"
            if name in ("kind", "id"):
                values[str(name)] = raw
            elif spec is None:
                values[str(name)] = self.untyped(raw, path)
            elif raw is None:
                values[str(name)] = None
            else:
                values[str(name)] = self.value(spec, raw, path, kind.enums)
        for name, spec in kind.specs.items():
            if spec.required and ticket.get(name) is None and name not in ("kind", "id"):
                self.fail(f"ticket.{name}", "validation.required", f"缺少必填字段 {name}")
        return values

    def identity(self, ticket: Mapping[str, Any], kinds: Mapping[str, KindSchema]) -> KindSchema | None:
        kind_name = ticket.get("kind")
        ticket_id = ticket.get("id")
        if isinstance(ticket_id, bool) or not isinstance(ticket_id, str | int) or ticket_id == "":
            self.fail("ticket.id", "validation.required", "缺少工单编号 ticket.id（字符串或整数）")
        elif isinstance(ticket_id, str) and (
            len(ticket_id) > MAX_EVENT_ID or not _PRINTABLE.match(ticket_id)
        ):
            self.fail(
                "ticket.id", "validation.bad_identifier", f"工单编号应为不超过 {MAX_EVENT_ID} 个可打印字符"
            )
        if not isinstance(kind_name, str) or not kind_name:
            self.fail("ticket.kind", "validation.required", "缺少工单类型 ticket.kind")
            return None
        kind = kinds.get(kind_name)
        if kind is None:
            hint = difflib.get_close_matches(kind_name, list(kinds), n=1, cutoff=0.5)
            known = "、".join(sorted(kinds)) or "无"
            self.fail(
                "ticket.kind",
                "validation.unknown_kind",
                f"未知的工单类型 {_show(kind_name)}（已声明：{known}）"
                + (f"；是否应为 {hint[0]}？" if hint else ""),
            )
        return kind

    def number(self, raw: Any, path: str, spec: FieldSpec | None = None) -> Decimal | None:
        if isinstance(raw, bool):
            number = None
        elif isinstance(raw, Decimal):
            number = raw
        elif isinstance(raw, int):
            number = Decimal(raw)
        elif isinstance(raw, float):
            number = Decimal(repr(raw))
        elif isinstance(raw, str) and _PLAIN_DECIMAL.match(raw):
            number = Decimal(raw)
        else:
            number = None
        if number is None or not number.is_finite():
            example = '（如 6000000、4999.99 或 "6000000.00"）'
            self.fail(path, "validation.not_a_number", f"应为数字{example}，收到 {_show(raw)}")
            return None
        bounded = (
            spec is not None
            and (spec.max is not None or spec.max_exclusive is not None)
            and (spec.min is not None or spec.min_exclusive is not None)
        )
        if len(number.as_tuple().digits) > MAX_DIGITS or (
            not bounded and abs(number) > self.limits.max_number
        ):
            self.fail(
                path,
                "validation.number_too_large",
                f"数值 {_show(raw)} 超出允许范围（绝对值不超过 {self.limits.max_number:,}，至多 {MAX_DIGITS} 位有效数字）",
            )
            return None
        return number

    def untyped(self, raw: Any, path: str) -> Any:
        """An undeclared field: carried along, numbers exact and bounded like any other."""
        if isinstance(raw, bool) or raw is None or isinstance(raw, str):
            return raw
        if isinstance(raw, int | float | Decimal):
            return self.number(raw, path)
        if isinstance(raw, Mapping):
            return {str(k): self.untyped(v, f"{path}.{k}") for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.untyped(v, f"{path}.{i}") for i, v in enumerate(raw)]
        return raw

    def value(self, spec: FieldSpec, raw: Any, path: str, enums: Mapping[str, Sequence[str]]) -> Any:
        kind = spec.type
        if kind in ("decimal", "integer"):
            number = self.number(raw, path, spec)
            if number is None:
                return None
            if kind == "integer" and number != number.to_integral_value():
                self.fail(path, "validation.not_an_integer", f"应为整数，收到 {_show(raw)}")
                return None
            return number if self.bounded(spec, number, path, str(number)) else None
        if kind == "string":
            if not isinstance(raw, str):
                self.fail(path, "validation.not_a_string", f"应为字符串，收到 {_show(raw)}")
                return None
            return raw if self.text(spec, raw, path) else None
        if kind == "enum":
            return self.member(raw, path, spec.enum or "", enums.get(spec.enum or "", ()))
        if kind == "boolean":
            if not isinstance(raw, bool):
                self.fail(path, "validation.not_a_boolean", f"应为 true 或 false，收到 {_show(raw)}")
                return None
            return raw
        if kind == "datetime":
            parsed = parse_instant(raw)
            if isinstance(parsed, str):
                self.fail(path, parsed, TIME_MESSAGES[parsed] + f"，收到 {_show(raw)}")
                return None
            return parsed if self.bounded(spec, parsed, path, _show(raw)) else None
        if kind == "date":
            return self.day(spec, raw, path)
        return self.items(spec, raw, path, enums)

    def day(self, spec: FieldSpec, raw: Any, path: str) -> str | None:
        try:
            day = date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
        except ValueError:
            day = None
        if day is None:
            self.fail(path, "validation.not_a_date", f"应为日期 YYYY-MM-DD，收到 {_show(raw)}")
            return None
        return raw if self.bounded(spec, day, path, raw) else None

    def items(
        self, spec: FieldSpec, raw: Any, path: str, enums: Mapping[str, Sequence[str]]
    ) -> list[Any] | None:
        if not isinstance(raw, list):
            self.fail(path, "validation.not_a_list", f"应为列表，收到 {_show(raw)}")
            return None
        if spec.max_length is not None and len(raw) > spec.max_length:
            self.fail(path, "validation.too_long", f"列表最多 {spec.max_length} 项，收到 {len(raw)} 项")
        if spec.items is None:
            return [self.untyped(v, f"{path}.{i}") for i, v in enumerate(raw)]
        item_type = spec.items if spec.items not in enums else "enum"
        item_spec = FieldSpec(spec.name, item_type, enum=spec.items if item_type == "enum" else None)
        return [self.value(item_spec, v, f"{path}.{i}", enums) for i, v in enumerate(raw)]

    def member(self, raw: Any, path: str, enum: str, values: Sequence[str]) -> str | None:
        if isinstance(raw, str) and raw in values:
            return raw
        text = raw.strip() if isinstance(raw, str) else str(raw)
        exact = [v for v in values if v.casefold() == text.casefold()]
        close = exact or difflib.get_close_matches(text, list(values), n=1, cutoff=0.5)
        hint = f"；是否应为 {close[0]}？" if close else ""
        self.fail(
            path,
            "validation.not_in_enum",
            f"{_show(raw)} 不是{enum}的取值（可选：{'、'.join(values)}）{hint}",
        )
        return None

    def text(self, spec: FieldSpec, raw: str, path: str) -> bool:
        ok = True
        if spec.max_length is not None and len(raw) > spec.max_length:
            self.fail(path, "validation.too_long", f"最多 {spec.max_length} 个字符，收到 {len(raw)} 个")
            ok = False
        if spec.pattern is not None and not spec.pattern.fullmatch(raw):
            self.fail(path, "validation.pattern_mismatch", f"{_show(raw)} 不符合格式 {spec.pattern.pattern}")
            ok = False
        if spec.format is not None:
            reason = FORMATS[spec.format](raw)
            if reason is not None:
                self.fail(path, f"validation.format.{spec.format}", reason)
                ok = False
        return ok

    def bounded(self, spec: FieldSpec, value: Any, path: str, shown: str) -> bool:
        if isinstance(value, datetime | date) and not any(
            b is not None for b in (spec.min, spec.max, spec.min_exclusive, spec.max_exclusive)
        ):
            instant = (
                value
                if isinstance(value, datetime)
                else datetime(value.year, value.month, value.day, tzinfo=UTC)
            )
            if not _FIELD_EARLIEST <= instant < _FIELD_LATEST:
                self.fail(path, "validation.time_out_of_range", f"时间 {shown} 超出可接受范围 1900 … 2200 年")
                return False
            return True
        broken = None
        if spec.min is not None and not value >= spec.min:
            broken = ("不小于", spec.min)
        elif spec.min_exclusive is not None and not value > spec.min_exclusive:
            broken = ("大于", spec.min_exclusive)
        elif spec.max is not None and not value <= spec.max:
            broken = ("不大于", spec.max)
        elif spec.max_exclusive is not None and not value < spec.max_exclusive:
            broken = ("小于", spec.max_exclusive)
        if broken is not None:
            self.fail(path, "validation.out_of_range", f"应{broken[0]} {broken[1]}，收到 {shown}")
            return False
        return True


def read_event(
    body: Any,
    kinds: Mapping[str, KindSchema],
    *,
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
    default_id: bool = False,
) -> CheckedEvent:
    """Validate one event body against its kind; raises `InvalidEventError` listing every problem, unless the
    only problems are the ticket's own and its kind routes invalid tickets (then they come back with it)."""
    checker = _Checker(limits, now)
    event_id, etype, occurred_at, ticket = checker.envelope(body, default_id)
    kind = checker.identity(ticket, kinds) if ticket is not None else None
    envelope_problems = len(checker.problems)
    values = checker.ticket(ticket, kind) if ticket is not None and kind is not None else {}
    if envelope_problems or occurred_at is None or ticket is None or kind is None:
        raise InvalidEventError.of(checker.problems)
    problems = tuple(checker.problems)
    if problems and kind.invalid is None:
        raise InvalidEventError.of(problems)
    values["id"] = str(values["id"])
    if problems:  # routed: decided on what was sent, never on a guessed value
        values = {**{str(k): v for k, v in ticket.items()}, "id": values["id"]}
    event = Event(event_id=event_id, type=etype, occurred_at=occurred_at, ticket=values, problems=problems)
    return CheckedEvent(event, problems, kind.invalid if problems else None)


def same_meaning(a: Event, b: Event) -> bool:
    """Two validated events mean the same: same id, type, instant and ticket values (4999.990 == 4999.99)."""
    return (a.event_id, a.type, a.occurred_at, dict(a.ticket)) == (
        b.event_id,
        b.type,
        b.occurred_at,
        dict(b.ticket),
    )
