"""Writing one compliance case into a case file's text from the console's case form (no YAML typed by
hand): its name, each given event's type, time and ticket (one value per field of the kind), the clock it
runs to and its expected / forbidden actions. The case is added, or replaced whole; the other cases, the
comments and blank lines stay as they were. The result is checked and run as any uploaded case file. One
form writes every case: the 测试用例 page's and the draft page's 修改样例 both open it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from rulesvc.lang.tableedit import TableEditError, scalar

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
NUMERIC_TYPES = frozenset({"decimal", "integer"})
SHANGHAI = ZoneInfo("Asia/Shanghai")


class CaseEditError(TableEditError):
    code = "case_edit.invalid"


def _load(text: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise CaseEditError(f"样例文件无法解析：{exc}") from None


def action_line(text: str) -> str:
    """One expectation as typed, checked to be a flow mapping with a `type`."""
    line = text.strip()
    if not line.startswith("{"):
        line = "{" + line + "}"
    try:
        value = YAML(typ="safe").load(line)
    except YAMLError:
        raise CaseEditError(f"动作写法不正确：{text}（例：{{type: assign, group: 费用审批岗}}）") from None
    if not isinstance(value, dict) or not value.get("type"):
        raise CaseEditError(f"动作须有 type：{text}")
    return line


def ticket_flow(values: Mapping[str, str], types: Mapping[str, str]) -> str:
    parts = []
    for key, raw in values.items():
        value = raw.strip()
        if not value:
            continue
        numeric = types.get(key) in NUMERIC_TYPES and _NUMBER.match(value)
        parts.append(f"{key}: {value if numeric else scalar(value, False)}")
    return "{" + ", ".join(parts) + "}"


# -- a whole case from the form ---------------------------------------------------------------------------

BEIJING = "+08:00"
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$")
NOTHING = "{}"
"""`expect_not: [{}]`: the case expects no action at all (an empty pattern matches every action)."""


@dataclass(frozen=True)
class GivenEvent:
    type: str
    at: str
    """ISO 8601, `T` or a space between date and time; without an offset it is Beijing time (as the form's
    time fields are typed: `2026-11-02 10:00:00`)."""
    ticket: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseForm:
    """A case as the form writes it: given events (type, time, the ticket's fields as typed), the clock it
    runs to (`until`, empty: the last event's time), expected and forbidden actions, or none expected."""

    name: str
    given: Sequence[GivenEvent]
    until: str = ""
    expect: Sequence[str] = ()
    expect_not: Sequence[str] = ()
    expect_none: bool = False


def form_time(text: str, what: str) -> str:
    """A time as written in a case file: `2026-11-02T10:00:00+08:00` (Beijing time when typed without
    an offset)."""
    value = text.strip().replace(" ", "T", 1)
    if _LOCAL_TIME.match(value):
        value = (value if value.count(":") == 2 else value + ":00") + BEIJING
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CaseEditError(f"{what}格式不正确：{text}（应为北京时间，如 2026-11-02 10:00）") from None
    if moment.tzinfo is None:
        raise CaseEditError(f"{what}须带时区：{text}")
    return moment.isoformat(timespec="seconds")


def case_lines(case: CaseForm, types: Mapping[str, str], indent: int = 2) -> list[str]:
    """The case as lines of a case file, its `- name:` indented by `indent` spaces."""
    if not case.name.strip():
        raise CaseEditError("样例名称不能为空")
    if not case.given:
        raise CaseEditError("样例至少要有一个事件")
    expect = [action_line(a) for a in case.expect if a.strip()]
    expect_not = [action_line(a) for a in case.expect_not if a.strip()]
    if case.expect_none:
        if expect:
            raise CaseEditError("期望无任何动作时不能再列期望动作")
        expect_not = [NOTHING, *expect_not]
    pad = " " * indent
    lines = [f"{pad}- name: {scalar(case.name.strip(), False)}\n", f"{pad}  given:\n"]
    for number, event in enumerate(case.given, start=1):
        if not event.type.strip():
            raise CaseEditError(f"第 {number} 个事件没有事件类型")
        lines.append(f"{pad}    - type: {scalar(event.type.strip(), False)}\n")
        lines.append(f"{pad}      at: {form_time(event.at, f'第 {number} 个事件的发生时间')}\n")
        lines.append(f"{pad}      ticket: {ticket_flow(event.ticket, types)}\n")
    if case.until.strip():
        lines.append(f"{pad}  until: {form_time(case.until, '时钟（运行到）')}\n")
    for key, actions in (("expect", expect), ("expect_not", expect_not)):
        if actions:
            lines.append(f"{pad}  {key}:\n")
            lines.extend(f"{pad}    - {a}\n" for a in actions)
    return lines


def put_case(text: str, index: int | None, case: CaseForm, types: Mapping[str, str]) -> str:
    """`text` with case number `index` (0-based) replaced by `case`, or `case` added at the end (None).
    The other cases, comments and blank lines stay as they were."""
    data = _load(text) if text.strip() else None
    cases = data.get("cases") if isinstance(data, Mapping) else None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if not cases:
        if index is not None:
            raise CaseEditError(f"样例文件中没有第 {index + 1} 个样例")
        head = [line for line in lines if line.lstrip().startswith("#") or not line.strip()]
        return "".join([*head, "cases:\n", *case_lines(case, types)])
    names = [str(c.get("name", "")) for i, c in enumerate(cases) if i != index and isinstance(c, Mapping)]
    if case.name.strip() in names:
        raise CaseEditError(f"已有同名样例：{case.name.strip()}")
    indent = max(cases.lc.item(0)[1] - 2, 0)
    new = case_lines(case, types, indent)
    if index is None:
        while lines and not lines[-1].strip():
            lines.pop()
        return "".join([*lines, "\n", *new])
    if not 0 <= index < len(cases):
        raise CaseEditError(f"样例文件中没有第 {index + 1} 个样例")
    start = cases.lc.item(index)[0]
    end = cases.lc.item(index + 1)[0] if index + 1 < len(cases) else len(lines)
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    lines[start:end] = new
    return "".join(lines)


def form_of(case: Mapping[str, Any]) -> dict[str, Any]:
    """A case of a file as the form shows it: events, the clock, expectations as one flow line each."""
    expect_not = [flow_text(a) for a in case.get("expect_not") or []]
    none = NOTHING in expect_not
    return {
        "name": str(case.get("name", "")),
        "given": [
            {
                "type": str(e.get("type", "")),
                "at": _time_text(e.get("at")),
                "ticket": {k: "" if v is None else str(v) for k, v in (e.get("ticket") or {}).items()},
            }
            for e in case.get("given") or []
            if isinstance(e, Mapping)
        ],
        "until": _time_text(case.get("until")),
        "expect": [flow_text(a) for a in case.get("expect") or []],
        "expect_not": [a for a in expect_not if a != NOTHING],
        "expect_none": none,
    }


def flow_text(action: Any) -> str:
    """An expectation as one flow line: `{type: assign, group: 费用审批岗}`."""
    if not isinstance(action, Mapping):
        return str(action)
    return "{" + ", ".join(f"{k}: {v}" for k, v in action.items()) + "}"


def _time_text(value: Any) -> str:
    """A case's time as the form shows it: Beijing time, `2026-11-02 10:00:00`."""
    if value is None or value == "":
        return ""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(SHANGHAI)
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
