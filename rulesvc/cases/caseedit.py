"""Editing one compliance case in a case file's text from a form (no YAML typed by hand): its name, the
ticket of each given event (one value per field of the kind), and its expected / forbidden actions. Only
those keys' lines are rewritten; the other cases, the comments and the rest of the case stay as they were.
The result is checked and run as any uploaded case file."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from rulesvc.lang.tableedit import TableEditError, scalar, token_end

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
NUMERIC_TYPES = frozenset({"decimal", "integer"})


class CaseEditError(TableEditError):
    code = "case_edit.invalid"


@dataclass(frozen=True)
class CaseEdit:
    name: str
    tickets: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    """Given event index → the ticket's fields as typed (an empty value leaves the field out)."""
    expect: Sequence[str] = ()
    """Expected actions, each a flow mapping as in a case file: `{type: assign, group: 费用审批岗}`."""
    expect_not: Sequence[str] = ()


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


def _span(mapping: Any, key: str, end: int, lines: list[str]) -> tuple[int, int]:
    """Lines [start, stop) of `key` and its value in `mapping`: up to the next line indented no deeper
    than the key (blank and comment lines at the end stay where they are), at most `end`."""
    start, col = mapping.lc.key(key)
    stop = start + 1
    while stop < end:
        line = lines[stop]
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and len(line) - len(line.lstrip(" ")) <= col:
            break
        stop += 1
    while stop > start + 1 and (not lines[stop - 1].strip() or lines[stop - 1].lstrip().startswith("#")):
        stop -= 1
    return start, stop


def edit_case(text: str, index: int, edit: CaseEdit, types: Mapping[str, str]) -> str:
    """`text` with case number `index` (0-based) changed as `edit` says; `types`: field → schema type."""
    data = _load(text)
    cases = data.get("cases") if isinstance(data, Mapping) else None
    if not cases or not 0 <= index < len(cases):
        raise CaseEditError(f"样例文件中没有第 {index + 1} 个样例")
    case = cases[index]
    if not edit.name.strip():
        raise CaseEditError("样例名称不能为空")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    end = cases.lc.item(index + 1)[0] if index + 1 < len(cases) else len(lines)
    while end > cases.lc.item(index)[0] + 1 and (
        not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
    ):
        end -= 1
    indent = " " * case.lc.key("name")[1]
    replacements: list[tuple[int, int, list[str]]] = []  # (start, stop, new lines), applied bottom-up
    for key, actions in (("expect", edit.expect), ("expect_not", edit.expect_not)):
        body = [f"{indent}{key}:\n", *(f"{indent}  - {action_line(a)}\n" for a in actions if a.strip())]
        if key in case:
            start, stop = _span(case, key, end, lines)
            replacements.append((start, stop, body if len(body) > 1 else []))
        elif len(body) > 1:
            replacements.append((end, end, body))
    for event_index, values in edit.tickets.items():
        events = case.get("given") or []
        if not 0 <= event_index < len(events) or "ticket" not in events[event_index]:
            raise CaseEditError(f"样例第 {event_index + 1} 个事件没有工单")
        event = events[event_index]
        start, stop = _span(event, "ticket", end, lines)
        key_indent = " " * event.lc.key("ticket")[1]
        replacements.append((start, stop, [f"{key_indent}ticket: {ticket_flow(values, types)}\n"]))
    line, col = case.lc.value("name")
    name_line = lines[line]
    quoted = name_line[col : col + 1] in ('"', "'")
    lines[line] = name_line[:col] + scalar(edit.name.strip(), quoted) + name_line[token_end(name_line, col) :]
    for start, stop, new in sorted(replacements, key=lambda r: r[0], reverse=True):
        lines[start:stop] = new
    return "".join(lines)
