"""Compliance cases ↔ XLSX and CSV sheets: one row per given event, a case's first row carrying the case.

    row 1   合规样例 | <ruleset> | 工单类型 | <kind> | 说明 | <how the rows are read>
    row 2   样例名称 | 说明 | 事件 | 发生时间 | [事件编号] | 工单 <field> ... | 运行到（时钟） | 期望动作 | 不应出现的动作
    row 3   name | description | type | at | [event_id] | ticket.<field> ... | until | expect | expect_not
    row 4…  one row per event; a row with an empty name is a further event of the case above

Times are shown in Beijing time (`2026-11-02 10:00`); a time typed without an offset is Beijing time. An
actions cell holds one action per line, each a flow mapping as in a case file (`{type: assign, group: X}`).
Importing a sheet gives a case file's text (cases whose meaning did not change keep their text and comments
from the file they replace), checked as an uploaded case file is, every error at its cell.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ruamel.yaml.comments import CommentedSeq

from rulesvc.cases.model import Case, load_case_text
from rulesvc.errors import InvalidEventError, RulesetError
from rulesvc.events import TICKET_EVENT_TYPES
from rulesvc.lang.model import KindSchema
from rulesvc.sheets.cells import (
    CellLocation,
    DropDown,
    Grid,
    cell_text,
    padded,
    read_grids,
    write_csv,
    xlsx_bytes,
)
from rulesvc.validation import read_event
from rulesvc.yamlpos import closest, load_yaml, plain

TITLE = "合规样例"
HEADER_ROWS = 3
FIRST_ROW = HEADER_ROWS + 1
BEIJING = timezone(timedelta(hours=8))
HOW = "每行一个事件；样例名称为空的行是上一样例的后续事件；时间不写时区即北京时间；动作每行一个"

CASE_COLUMNS = {"name": "样例名称", "description": "说明"}
EVENT_COLUMNS = {"type": "事件", "at": "发生时间（北京时间）", "event_id": "事件编号"}
TAIL_COLUMNS = {"until": "运行到（时钟）", "expect": "期望动作（每行一个）", "expect_not": "不应出现的动作"}
CASE_LEVEL = ("name", "description", "until", "expect", "expect_not")
REQUIRED = ("name", "type", "at")
NUMERIC = frozenset({"decimal", "integer"})
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?\Z")
_PLAIN = re.compile(r"[^\W\d][\w.\-]*\Z")
_NOT_TEXT = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"})


# -- export ------------------------------------------------------------------------------------------------


def _raw_cases(file: str, text: str) -> list[Mapping[str, Any]]:
    src, errors = load_yaml(file, text)
    if src is None:
        raise ValueError("; ".join(str(e) for e in errors))
    raw = src.data.get("cases") if isinstance(src.data, Mapping) else None
    return [plain(case) for case in raw or [] if isinstance(case, Mapping)]


def _ticket_fields(kind: KindSchema, cases: Sequence[Mapping[str, Any]]) -> list[str]:
    """The kind's fields in order, then any other ticket key the cases use (so nothing is lost)."""
    names = list(kind.fields)
    for case in cases:
        for event in case.get("given") or []:
            ticket = event.get("ticket") if isinstance(event, Mapping) else None
            for key in ticket or {}:
                if key not in names:
                    names.append(str(key))
    return names


def _columns(kind: KindSchema, cases: Sequence[Mapping[str, Any]], with_ids: bool) -> list[str]:
    events = [k for k in EVENT_COLUMNS if k != "event_id" or with_ids]
    return [*CASE_COLUMNS, *events, *(f"ticket.{f}" for f in _ticket_fields(kind, cases)), *TAIL_COLUMNS]


def _heading(column: str, kind: KindSchema) -> str:
    if column.startswith("ticket."):
        name = column.removeprefix("ticket.")
        spec = kind.specs.get(name)
        return f"工单 {name}" + (f"（{spec.enum or spec.type}）" if spec else "")
    return {**CASE_COLUMNS, **EVENT_COLUMNS, **TAIL_COLUMNS}[column]


def show_time(value: Any) -> str:
    """A time as people read it: Beijing time, `2026-11-02 10:00` (seconds only when there are some)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        local = value.astimezone(BEIJING)
        return local.strftime("%Y-%m-%d %H:%M:%S" if local.second or local.microsecond else "%Y-%m-%d %H:%M")
    return cell_text(value)


def flow_text(value: Any) -> str:
    """A plain value as one line of YAML flow text that reads back as the same value."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{flow_text(str(k))}: {flow_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow_text(v) for v in value) + "]"
    if isinstance(value, str):
        return value if _PLAIN.match(value) and value.lower() not in _NOT_TEXT else _json(value)
    if value is None:
        return "null"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return cell_text(value)


def _json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _value_text(value: Any) -> str:
    if isinstance(value, Mapping | list):
        return flow_text(value)
    return cell_text(value)


def cases_grid(file: str, text: str, ruleset: str, kind: KindSchema) -> Grid:
    """The cases of a case file as a sheet's rows of text (what both the XLSX and the CSV export hold)."""
    cases = _raw_cases(file, text)
    with_ids = any(
        isinstance(e, Mapping) and "event_id" in e for case in cases for e in case.get("given") or []
    )
    columns = _columns(kind, cases, with_ids)
    grid: Grid = [
        [TITLE, ruleset, "工单类型", kind.kind, "说明", HOW],
        [_heading(c, kind) for c in columns],
        list(columns),
    ]
    for case in cases:
        for number, event in enumerate(case.get("given") or []):
            ticket = event.get("ticket") or {}
            values: dict[str, str] = {
                "type": str(event.get("type", "")),
                "at": show_time(event.get("at", event.get("occurred_at"))),
                "event_id": cell_text(event.get("event_id")),
                **{f"ticket.{k}": _value_text(v) for k, v in ticket.items()},
            }
            if number == 0:
                values.update(
                    name=str(case.get("name", "")),
                    description=cell_text(case.get("description")),
                    until=show_time(case.get("until")),
                    expect="\n".join(flow_text(a) for a in case.get("expect") or []),
                    expect_not="\n".join(flow_text(a) for a in case.get("expect_not") or []),
                )
            grid.append([values.get(column, "") for column in columns])
    return grid


def export_cases_csv(file: str, text: str, ruleset: str, kind: KindSchema) -> bytes:
    return write_csv(cases_grid(file, text, ruleset, kind))


def export_cases_xlsx(file: str, text: str, ruleset: str, kind: KindSchema) -> bytes:
    """The cases as a workbook of one sheet: header rows frozen and shaded, event types and enum fields
    offered as drop-down lists, actions cells wrapped (one action per line)."""
    grid = cases_grid(file, text, ruleset, kind)
    columns = grid[HEADER_ROWS - 1]
    lists = {columns.index("type") + 1: DropDown("事件", TICKET_EVENT_TYPES)}
    for index, column in enumerate(columns, start=1):
        spec = kind.specs.get(column.removeprefix("ticket.")) if column.startswith("ticket.") else None
        if spec is not None and spec.enum and spec.enum in kind.enums:
            lists[index] = DropDown(spec.enum, kind.enums[spec.enum])
    wrapped = frozenset({columns.index(c) + 1 for c in ("expect", "expect_not", "description")})
    return xlsx_bytes(TITLE, grid, header_rows=HEADER_ROWS, freeze_col=2, lists=lists, wrapped=wrapped)


# -- import ------------------------------------------------------------------------------------------------


@dataclass
class _Event:
    row: int
    values: dict[str, str]


@dataclass
class _Case:
    row: int
    values: dict[str, str]
    events: list[_Event] = field(default_factory=list)


class _CaseReader:
    """A cases sheet → a case file's text, errors positioned by cell."""

    def __init__(self, where: str, grid: Grid, kind: KindSchema, kinds: Mapping[str, KindSchema]) -> None:
        self.where, self.kind, self.kinds = where, kind, kinds
        width = max((len(row) for row in grid), default=0)
        self.grid = padded(grid, width)
        self.errors: list[RulesetError] = []
        self.columns: dict[str, int] = {}
        self.known = [*CASE_COLUMNS, *EVENT_COLUMNS, *(f"ticket.{f}" for f in kind.fields), *TAIL_COLUMNS]

    def error(self, code: str, message: str, row: int, col: int, hint: str | None = None) -> None:
        self.errors.append(RulesetError(code, message, CellLocation(self.where, row, max(col, 1)), hint))

    def cell(self, row: int, column: str) -> str:
        col = self.columns.get(column)
        return self.grid[row - 1][col - 1].strip() if col else ""

    def header(self) -> None:
        keys = self.grid[HEADER_ROWS - 1] if len(self.grid) >= HEADER_ROWS else []
        for col, raw in enumerate(keys, start=1):
            key = raw.strip()
            if not key:
                continue
            if key not in self.known:
                guess = closest(key, self.known)
                self.error(
                    "sheet.unknown_column",
                    f"没有「{key}」这一列" + (f"（是不是「{guess}」？）" if guess else ""),
                    HEADER_ROWS,
                    col,
                    "第 3 行是列名：" + "、".join(self.known),
                )
            elif key in self.columns:
                self.error(
                    "sheet.duplicate_column",
                    f"「{key}」列出现了两次（另一列在第 {self.columns[key]} 列）",
                    HEADER_ROWS,
                    col,
                )
            else:
                self.columns[key] = col
        for key in REQUIRED:
            if key not in self.columns:
                self.error(
                    "sheet.missing_column",
                    f"缺少「{key}」列（{_heading(key, self.kind)}）",
                    HEADER_ROWS,
                    len(keys) + 1,
                    "先用 rulesvc cases export 导出，在导出的表格里修改",
                )

    def read(self) -> list[_Case]:
        self.header()
        if any(e.code in STRUCTURE for e in self.errors):
            return []
        cases: list[_Case] = []
        for row in range(FIRST_ROW, len(self.grid) + 1):
            if not any(cell.strip() for cell in self.grid[row - 1]):
                continue
            values = {key: self.cell(row, key) for key in self.columns}
            if values.get("name"):
                cases.append(_Case(row, {k: values[k] for k in CASE_LEVEL if k in values}))
            elif not cases:
                self.error(
                    "sheet.missing_case_name",
                    "第一个事件行须写样例名称（名称为空的行是上一样例的后续事件）",
                    row,
                    self.columns["name"],
                )
                continue
            else:
                for key in CASE_LEVEL:
                    if values.get(key):
                        self.error(
                            "sheet.case_cell_on_event_row",
                            f"「{_heading(key, self.kind)}」写在样例的第一行（这一行没有样例名称，是上一样例的后续事件）",
                            row,
                            self.columns[key],
                            "要新建样例，请在这一行写上样例名称",
                        )
            cases[-1].events.append(_Event(row, {k: v for k, v in values.items() if k not in CASE_LEVEL}))
        return cases

    # -- cells → YAML --------------------------------------------------------------------------------------

    def event_type(self, event: _Event) -> str:
        text = event.values.get("type", "")
        if text in TICKET_EVENT_TYPES:
            return text
        col = self.columns["type"]
        if not text:
            self.error("sheet.missing_value", "没有填写事件类型", event.row, col, "如 ticket.created")
        else:
            guess = closest(text, TICKET_EVENT_TYPES)
            self.error(
                "sheet.unknown_event_type",
                f'"{text}" 不是事件类型' + (f'（是不是 "{guess}"？）' if guess else ""),
                event.row,
                col,
                "事件类型：" + "、".join(TICKET_EVENT_TYPES),
            )
        return _json(text)

    def time(self, text: str, row: int, column: str, required: bool) -> str | None:
        if not text:
            if required:
                self.error("sheet.missing_value", "没有填写发生时间", row, self.columns[column])
            return None
        parsed = parse_sheet_time(text)
        if parsed is None:
            self.error(
                "sheet.bad_time",
                f'"{text}" 不是时间',
                row,
                self.columns[column],
                "写成 2026-11-02 10:00（北京时间），或带时区 2026-11-02T10:00:00+08:00",
            )
            return None
        return parsed.isoformat()

    def ticket(self, event: _Event) -> str:
        parts: list[str] = []
        values = {k.removeprefix("ticket."): v for k, v in event.values.items() if k.startswith("ticket.")}
        if not values.get("kind"):
            values["kind"] = self.kind.kind
        for name in [*self.kind.fields, *(k for k in values if k not in self.kind.fields)]:
            text = values.get(name, "")
            if not text:
                continue
            spec = self.kind.specs.get(name)
            if spec is not None and spec.enum and spec.enum in self.kind.enums:
                members = self.kind.enums[spec.enum]
                if text not in members:
                    guess = closest(text, members)
                    self.error(
                        "sheet.unknown_enum_value",
                        f'"{text}" 不是 {spec.enum} 的取值' + (f'（是不是 "{guess}"？）' if guess else ""),
                        event.row,
                        self.columns.get(f"ticket.{name}", 1),
                        f"{spec.enum} 的取值：" + "、".join(members),
                    )
            parts.append(f"{flow_text(name)}: {_scalar(text, spec.type if spec else 'string')}")
        return "{" + ", ".join(parts) + "}"

    def actions(self, case: _Case, key: str) -> list[str]:
        text = case.values.get(key, "")
        found: list[str] = []
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) == 1 and lines[0].startswith("[") and lines[0].endswith("]"):
            src, _ = load_yaml("cell", lines[0])
            if src is not None and isinstance(src.data, list):
                lines = [flow_text(plain(item)) for item in src.data]
        for number, line in enumerate(lines, start=1):
            flow = line if line.startswith("{") else "{" + line + "}"
            src, errors = load_yaml("cell", flow)
            value = src.data if src is not None else None
            if isinstance(value, Mapping) and value.get("type"):
                found.append(flow)
                continue
            problem = errors[0].message if errors else "须是带 type 的映射"
            self.error(
                "sheet.bad_action",
                f"第 {number} 个动作写法有误：{problem}",
                case.row,
                self.columns[key],
                "每行一个动作，如 {type: assign, group: 费用审批岗}",
            )
        return found

    def case_text(self, cases: list[_Case]) -> tuple[str, dict[int, tuple[int, str]]]:
        """The case file's text, and for each of its lines (1-based) the sheet row and column it comes from."""
        lines: list[str] = ["cases:"]
        spots: dict[int, tuple[int, str]] = {}

        def put(text: str, row: int, column: str) -> None:
            lines.append(text)
            spots[len(lines)] = (row, column)

        for case in cases:
            if len(lines) > 1:
                lines.append("")
            put(f"  - name: {flow_text(case.values['name'])}", case.row, "name")
            if case.values.get("description"):
                put(f"    description: {flow_text(case.values['description'])}", case.row, "description")
            put("    given:", case.row, "type")
            for event in case.events:
                put(f"      - type: {self.event_type(event)}", event.row, "type")
                at = self.time(event.values.get("at", ""), event.row, "at", required=True)
                put(f"        at: {at or _json(event.values.get('at', ''))}", event.row, "at")
                if event.values.get("event_id"):
                    put(f"        event_id: {_json(event.values['event_id'])}", event.row, "event_id")
                put(f"        ticket: {self.ticket(event)}", event.row, "ticket.id")
            until = self.time(case.values.get("until", ""), case.row, "until", required=False)
            if until:
                put(f"    until: {until}", case.row, "until")
            for key in ("expect", "expect_not"):
                actions = self.actions(case, key)
                if actions:
                    put(f"    {key}:", case.row, key)
                    for action in actions:
                        put(f"      - {action}", case.row, key)
        return "\n".join(lines) + "\n", spots

    def check_events(self, text: str, cases: list[_Case]) -> None:
        """Every event checked against its kind as ingest checks it, each problem at its field's cell."""
        src, _ = load_yaml("cases", text)
        raw = src.data.get("cases") if src is not None and isinstance(src.data, Mapping) else None
        if not isinstance(raw, list):
            return
        now = datetime.now(BEIJING)
        reported = {(e.location.line, e.location.col) for e in self.errors}
        for case, raw_case in zip(cases, raw, strict=True):
            for number, (event, raw_event) in enumerate(zip(case.events, raw_case["given"], strict=True)):
                body = dict(plain(raw_event))
                body.setdefault("event_id", f"{case.values['name']}#{number + 1}")
                try:
                    read_event(body, self.kinds, now=now)
                except InvalidEventError as exc:
                    for problem in exc.problems:
                        column = _problem_column(problem.path, self.columns)
                        col = self.columns.get(column, 1)
                        if (event.row, col) not in reported:
                            self.error(
                                "sheet.bad_value", problem.message, event.row, col, f"字段 {problem.path}"
                            )
                            reported.add((event.row, col))


def _problem_column(path: str, columns: Mapping[str, int]) -> str:
    if path in ("occurred_at", "at"):
        return "at"
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in columns:
            return candidate
    return "type"


STRUCTURE = frozenset({"sheet.missing_column", "sheet.unknown_column", "sheet.duplicate_column"})


def _scalar(text: str, type_name: str) -> str:
    """A ticket field's cell as a YAML scalar of its type: numbers, booleans, dates and lists as typed (a
    wrong one is reported by the kind's check), everything else as text."""
    lowered = text.lower()
    if type_name in NUMERIC and _NUMBER.match(text):
        return text
    if type_name == "boolean" and lowered in ("true", "false"):
        return lowered
    if type_name in ("date", "datetime") and _DATE.match(text):
        return text.replace(" ", "T", 1)
    if type_name == "list" and text.startswith("[") and text.endswith("]"):
        return text
    return _json(text) if not (_PLAIN.match(text) and lowered not in _NOT_TEXT) else text


def parse_sheet_time(text: str) -> datetime | None:
    """`2026-11-02 10:00`, `2026-11-02T10:00:00+08:00`, `...Z`: a time without an offset is Beijing time."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=BEIJING)


def case_shape(case: Case) -> tuple[Any, ...]:
    """What a case says, without where it was written: equal for a case and its round trip through a sheet."""
    return (case.name, case.events, case.until, case.expect, case.expect_not, case.description)


def import_cases(
    file_name: str,
    data: bytes,
    ruleset: str,
    kind: KindSchema,
    kinds: Mapping[str, KindSchema],
    *,
    case_file: str,
    old_text: str = "",
) -> tuple[str | None, list[RulesetError]]:
    """The case file's text made from a cases sheet, checked as an uploaded case file is; or every error,
    positioned by cell. Cases that mean what they meant in `old_text` keep their text (and comments)."""
    grids, errors = read_grids(file_name, data)
    if errors:
        return None, errors
    chosen = [(where, grid) for where, grid in grids if grid and grid[0][:1] == [TITLE]]
    if not chosen:
        return None, [
            RulesetError(
                "sheet.no_cases",
                f"没有找到合规样例的工作表（A1 写「{TITLE}」，B1 写规则集名称）",
                CellLocation(grids[0][0] if grids else file_name, 1, 1),
                "先用 rulesvc cases export 导出，在导出的表格里修改",
            )
        ]
    where, grid = chosen[0]
    named = grid[0][1].strip() if len(grid[0]) > 1 else ""
    if named and named != ruleset:
        return None, [
            RulesetError(
                "sheet.wrong_ruleset",
                f"这张表是规则集「{named}」的合规样例，不是「{ruleset}」的",
                CellLocation(where, 1, 2),
                "导入到它自己的规则集，或把 B1 改为目标规则集名称",
            )
        ]
    reader = _CaseReader(where, grid, kind, kinds)
    cases = reader.read()
    if any(e.code in STRUCTURE for e in reader.errors):
        return None, sorted(reader.errors, key=RulesetError.sort_key)
    text, spots = reader.case_text(cases)
    reader.check_events(text, cases)
    if reader.errors:
        return None, _unique(reader.errors)
    loaded, found = load_case_text(case_file, text, kinds)
    if found:
        moved = []
        for error in found:
            row, column = spots.get(error.location.line, (1, "name"))
            moved.append(
                RulesetError(
                    f"sheet.{error.code}",
                    error.message,
                    CellLocation(where, row, reader.columns.get(column, 1)),
                    error.hint,
                )
            )
        return None, _unique(moved)
    return keep_unchanged(case_file, old_text, text, kinds, loaded), []


def _unique(errors: list[RulesetError]) -> list[RulesetError]:
    seen: set[tuple[str, str]] = set()
    out = []
    for error in sorted(errors, key=RulesetError.sort_key):
        key = (str(error.location), error.message)
        if key not in seen:
            seen.add(key)
            out.append(error)
    return out


def _spans(file: str, text: str) -> tuple[list[str], list[tuple[int, int]]] | None:
    """The file's lines and each case item's lines [start, stop) (0-based), or None when it cannot be read."""
    src, _ = load_yaml(file, text)
    raw = src.data.get("cases") if src is not None and isinstance(src.data, Mapping) else None
    if not isinstance(raw, CommentedSeq) or not raw:
        return None
    lines = text.splitlines()
    starts = [int(raw.lc.item(i)[0]) for i in range(len(raw))]
    spans = []
    for index, start in enumerate(starts):
        stop = starts[index + 1] if index + 1 < len(starts) else len(lines)
        while stop > start + 1 and not lines[stop - 1].strip():
            stop -= 1
        spans.append((start, stop))
    return lines, spans


def keep_unchanged(
    file: str, old_text: str, new_text: str, kinds: Mapping[str, KindSchema], new_cases: Sequence[Case]
) -> str:
    """`new_text` with each case that means what a case of the same name meant in `old_text` written as it
    was there (its comments too), and `old_text`'s lines above its first case kept."""
    old_cases, errors = load_case_text(file, old_text, kinds) if old_text.strip() else ([], [])
    old = _spans(file, old_text) if old_cases and not errors else None
    new = _spans(file, new_text)
    if old is None or new is None or len(old[1]) != len(old_cases):
        return new_text
    old_lines, old_spans = old
    new_lines, new_spans = new
    by_name = {c.name: (c, span) for c, span in zip(old_cases, old_spans, strict=True)}
    out = old_lines[: old_spans[0][0]]
    for index, (case, (start, stop)) in enumerate(zip(new_cases, new_spans, strict=True)):
        if index:
            out.append("")
        same = by_name.get(case.name)
        if same is not None and case_shape(same[0]) == case_shape(case):
            out.extend(old_lines[same[1][0] : same[1][1]])
        else:
            out.extend(new_lines[start:stop])
    return "\n".join(out) + "\n"
