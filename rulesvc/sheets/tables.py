"""Decision tables ↔ XLSX and CSV sheets.

A table's sheet (one per table; the sheet is named after the table):

    row 1   决策表 | <table id> | 命中策略 | <hit> | 汇总 | <aggregate> | 规则集 | <ruleset>
    row 2           |          | 条件 ... | 输出 ... | 动作
    row 3   类型    | 行号     | <input column names> | <output column names> | then
    row 4           | 字段     | <input expressions (ticket.amount)> | <output types> |
    row 5…  行      | <row id> | <cells> | <output values> | <actions, YAML flow: [{assign: {group: X}}]>
    last    默认    | <id>     |         | <default outputs> | <default actions>

Enum columns offer their values as a drop-down list (data validation; cells stay free text, since a cell is a
test such as `>= 部门经理`); output columns that list their values only accept those. Importing a sheet writes
its rows, default row, hit policy and aggregation into the ruleset's YAML text, which is then loaded exactly as
an uploaded draft is: every error found is reported at the cell it comes from.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from rulesvc import gcpause
from rulesvc.errors import InvalidRulesetError, RulesetError
from rulesvc.lang.ast import Compare, Const, Expr, ListExpr, Path
from rulesvc.lang.loader import load_ruleset
from rulesvc.lang.model import KindSchema, Row, Ruleset, Table
from rulesvc.lang.parse import parse_cell
from rulesvc.sheets.cells import CellLocation, DropDown, Grid, padded, read_grids, write_csv, xlsx_bytes
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.yamlpos import closest, load_yaml

TITLE = "决策表"
DEFAULT_MARK = "默认"
ROW_MARK = "行"
FIRST_ROW = 5  # the first table row of a sheet (1-based)
THEN = "then"


def table_ids(ruleset: Ruleset) -> list[str]:
    return [table.id for table in ruleset.tables]


def _editor() -> YAML:
    """ruamel's round-trip reader/writer as the files are laid out (comments and the rest of the file kept)."""
    yaml = YAML(typ="rt")
    yaml.width = 1_000_000  # one table row per line, however long
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.allow_unicode = True
    return yaml


def _flow(value: Any) -> Any:
    """`value` with every container set to flow style (`{a: 1}` / `[x]`), as a row of a sheet-made table."""
    if isinstance(value, CommentedMap | CommentedSeq):
        value.fa.set_flow_style()
        for child in value.values() if isinstance(value, CommentedMap) else value:
            _flow(child)
    return value


def _yaml_text(value: Any) -> str:
    out = io.StringIO()
    _editor().dump(_flow(value), out)
    text = out.getvalue().strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _raw_table(ruleset_text: str, table_id: str) -> CommentedMap:
    data = _editor().load(ruleset_text)
    for item in data.get("tables") or []:
        if isinstance(item, CommentedMap) and str(item.get("id")) == table_id:
            return item
    raise KeyError(table_id)


def _enum_members(table: Table, column: str, kind: KindSchema) -> tuple[str, tuple[str, ...]] | None:
    """The enum an input column tests (`ticket.<enum field>`), with its values in order."""
    expr = table.inputs.get(column)
    if isinstance(expr, Path) and len(expr.parts) == 2 and expr.parts[0] == "ticket":
        type_name = kind.fields.get(expr.parts[1])
        if type_name is not None and type_name in kind.enums:
            return type_name, tuple(kind.enums[type_name])
    return None


def table_grid(ruleset: Ruleset, table_id: str) -> Grid:
    """The sheet of one table as rows of text (what both the XLSX and the CSV export hold)."""
    table = next((t for t in ruleset.tables if t.id == table_id), None)
    if table is None:
        raise KeyError(table_id)
    raw = _raw_table(ruleset.source_text, table_id)
    inputs, outputs = list(table.input_texts), list(table.outputs)
    grid: Grid = [
        [TITLE, table.id, "命中策略", table.hit, "汇总", table.aggregate or "", "规则集", ruleset.name],
        ["", "", *(["条件"] * len(inputs)), *(["输出"] * len(outputs)), "动作"],
        ["类型", "行号", *inputs, *outputs, THEN],
        ["", "字段", *table.input_texts.values(), *(_output_type(table, name) for name in outputs), ""],
    ]
    raw_rows = raw.get("rows") or []
    for row, raw_row in zip(table.rows, raw_rows, strict=True):
        grid.append(
            [
                ROW_MARK,
                row.id,
                *(row.cell_texts.get(column, "") for column in inputs),
                *(row.output_texts.get(name, "") for name in outputs),
                _yaml_text(raw_row[THEN]) if THEN in raw_row else "",
            ]
        )
    raw_default = raw.get("default") or {}
    grid.append(
        [
            DEFAULT_MARK,
            table.default.id,
            *([""] * len(inputs)),
            *(table.default.output_texts.get(name, "") for name in outputs),
            _yaml_text(raw_default[THEN]) if THEN in raw_default else "",
        ]
    )
    return grid


def _output_type(table: Table, name: str) -> str:
    output = table.outputs[name]
    if output.values:
        return f"{output.type}: " + ", ".join(str(v) for v in output.values)
    return output.type


def export_table_csv(ruleset: Ruleset, table_id: str) -> bytes:
    return write_csv(table_grid(ruleset, table_id))


def export_table_xlsx(ruleset: Ruleset, table_id: str, kind: KindSchema) -> bytes:
    """The table as a workbook of one sheet, laid out for people: header rows frozen and shaded, the default
    row marked, enum values and output values offered as drop-down lists."""
    table = next(t for t in ruleset.tables if t.id == table_id)
    inputs, outputs = list(table.input_texts), list(table.outputs)
    lists: dict[int, DropDown] = {}
    for index, column in enumerate(inputs):
        enum = _enum_members(table, column, kind)
        if enum is not None:  # a cell is a test (`>= 部门经理`), not only a value: other text is allowed
            prompt = f"{enum[0]} 的取值：" + "、".join(enum[1])
            lists[3 + index] = DropDown(column, enum[1], strict=False, prompt=prompt)
    for index, name in enumerate(outputs):
        values = table.outputs[name].values
        if values:
            lists[3 + len(inputs) + index] = DropDown(f"输出 {name}", [str(v) for v in values])
    grid = table_grid(ruleset, table_id)
    return xlsx_bytes(table_id, grid, header_rows=FIRST_ROW - 1, freeze_col=3, lists=lists, last_fill=True)


class _SheetReader:
    """One table's sheet → the table's YAML rows, errors positioned by cell."""

    def __init__(self, where: str, grid: Grid, table: Table, kind: KindSchema) -> None:
        self.where, self.table, self.kind = where, table, kind
        self.width = max((len(row) for row in grid), default=0)
        self.grid = padded(grid, self.width)
        self.errors: list[RulesetError] = []
        self.columns: dict[str, int] = {}  # column name → 1-based sheet column
        self.sheet_rows: list[int] = []  # for each YAML row, its sheet row
        self.default_row = 0
        self.yaml = _editor()
        self.lists: frozenset[str] = frozenset()

    def at(self, row: int, col: int) -> CellLocation:
        return CellLocation(self.where, row, col)

    def error(self, code: str, message: str, row: int, col: int, hint: str | None = None) -> None:
        self.errors.append(RulesetError(code, message, self.at(row, col), hint))

    def cell(self, row: int, col: int) -> str:
        if row > len(self.grid) or col > self.width:
            return ""
        return self.grid[row - 1][col - 1].strip()

    def read(self) -> tuple[list[list[tuple[str, str]]], list[tuple[str, str]] | None, str, str]:
        hit = self.cell(1, 4) or self.table.hit
        aggregate = self.cell(1, 6)
        self.read_header()
        self.lists = self.flow_lists()
        rows: list[list[tuple[str, str]]] = []
        default: list[tuple[str, str]] | None = None
        for number in range(FIRST_ROW, len(self.grid) + 1):
            if not any(self.grid[number - 1]):
                continue
            mark = self.cell(number, 1)
            if mark == DEFAULT_MARK:
                if default is not None:
                    self.error(
                        "sheet.duplicate_default",
                        f"默认行只能有一行（第 {self.default_row} 行已是默认行）",
                        number,
                        1,
                    )
                    continue
                self.default_row = number
                default = self.read_row(number, default=True)
            elif mark in (ROW_MARK, ""):
                self.sheet_rows.append(number)
                rows.append(self.read_row(number, default=False))
            else:
                self.error(
                    "sheet.bad_row_mark",
                    f"第一列须是「{ROW_MARK}」或「{DEFAULT_MARK}」，这里是「{mark}」",
                    number,
                    1,
                    f"默认行（其余情况）写「{DEFAULT_MARK}」，其余行写「{ROW_MARK}」",
                )
        if default is None:
            self.error(
                "sheet.missing_default",
                f"缺少默认行（第一列写「{DEFAULT_MARK}」的一行：没有一行命中时怎么办）",
                max(len(self.grid), FIRST_ROW),
                1,
                "动作列写 [] 表示什么都不做",
            )
        return rows, default, hit, aggregate

    def read_header(self) -> None:
        names = [self.cell(3, col) for col in range(1, self.width + 1)]
        expected = [*self.table.input_texts, *self.table.outputs, THEN]
        for col, name in enumerate(names, start=1):
            if col <= 2 or not name:
                continue
            if name in self.columns:
                self.error("sheet.duplicate_column", f"列名「{name}」出现了两次", 3, col)
            elif name not in expected:
                guess = closest(name, expected)
                self.error(
                    "sheet.unknown_column",
                    f"「{name}」不是规则表 {self.table.id} 的列",
                    3,
                    col,
                    f"是不是「{guess}」？" if guess else "列：" + "、".join(expected),
                )
            else:
                self.columns[name] = col
        for name in expected:
            if name not in self.columns and name != THEN:
                self.error(
                    "sheet.missing_column",
                    f"缺少列「{name}」（第 3 行是列名）",
                    3,
                    len(names) + 1,
                    "导出一份新的表格对照列名",
                )

    def read_row(self, number: int, *, default: bool) -> list[tuple[str, str]]:
        """One sheet row as the (key, YAML text) pairs of its table row."""
        row: list[tuple[str, str]] = []
        row_id = self.cell(number, 2)
        index = len(self.sheet_rows)
        if row_id and row_id != (DEFAULT_MARK if default else f"{ROW_MARK}{index}"):
            row.append(("id", _quoted(row_id)))
        for column in self.table.input_texts:
            col = self.columns.get(column)
            text = self.cell(number, col) if col else ""
            if not text:
                continue
            if default:
                self.error(
                    "sheet.default_condition",
                    "默认行不写条件（它在没有一行命中时生效）",
                    number,
                    col or 1,
                    "清空这一格",
                )
                continue
            self.check_enum(column, text, number, col or 1)
            row.append((column, _quoted(text)))
        for name in self.table.outputs:
            col = self.columns.get(name)
            text = self.cell(number, col) if col else ""
            if text:
                row.append((name, _output_text(text)))
        col = self.columns.get(THEN)
        text = self.cell(number, col) if col else ""
        if text:
            actions = self.actions(text, number, col or 1)
            if actions is not None:
                row.append((THEN, actions))
        elif not self.table.outputs:
            row.append((THEN, "[]"))
        return row

    def flow_lists(self) -> frozenset[str]:
        """The one-line `[...]` actions cells that are YAML lists, found with one parse of them all (one parse
        per cell was most of an import's time); when that parse fails each cell is checked on its own."""
        col = self.columns.get(THEN)
        if col is None:
            return frozenset()
        texts = [self.cell(n, col) for n in range(FIRST_ROW, len(self.grid) + 1)]
        texts = [
            t for t in texts if t.startswith("[") and t.endswith("]") and "\n" not in t and "\r" not in t
        ]
        try:  # libyaml's events: only "is each one list" is asked here, the loader reads the cells again
            events = list(yaml.parse("".join(f"- {t}\n" for t in texts), Loader=yaml.CSafeLoader))
        except yaml.YAMLError:
            return frozenset()
        lists, depth = [], 0
        for event in events[3:-3]:  # inside the stream, the document and the outer list
            if depth == 0:
                lists.append(type(event) is yaml.SequenceStartEvent)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        if len(lists) != len(texts):
            return frozenset()
        return frozenset(t for t, is_list in zip(texts, lists, strict=True) if is_list)

    def actions(self, text: str, number: int, col: int) -> str | None:
        """The actions cell as YAML flow text (a list), or None after reporting why it is not one."""
        if text in self.lists:
            return text
        src, errors = load_yaml(self.where, text)
        if src is None:
            problem = errors[0].message if errors else "YAML"
            self.error(
                "sheet.bad_actions",
                f"动作写法有误：{problem}",
                number,
                col,
                "动作写成 YAML 列表，如 [{assign: {group: 费用审批岗}}]；什么都不做写 []",
            )
            return None
        value = src.data
        if not isinstance(value, CommentedMap | CommentedSeq):
            self.error(
                "sheet.bad_actions",
                "动作须是列表，如 [{assign: {group: 费用审批岗}}]",
                number,
                col,
                "什么都不做写 []",
            )
            return None
        if "\n" not in text and text.startswith(("[", "{")):
            return text if text.startswith("[") else f"[{text}]"
        if isinstance(value, CommentedMap):
            value = CommentedSeq([value])
        return _yaml_text(value)

    def check_enum(self, column: str, text: str, number: int, col: int) -> None:
        """A value an enum column does not have: "部门经里" 不是 职级 的取值（是不是 "部门经理"？）."""
        enum = _enum_members(self.table, column, self.kind)
        if enum is None:
            return
        name, members = enum
        try:
            cell = parse_cell(text, self.at(number, col))
        except InvalidRulesetError:
            return  # reported when the table is loaded
        for value in _text_literals(cell):
            if value in members:
                continue
            guess = closest(value, members)
            self.error(
                "sheet.unknown_enum_value",
                f'"{value}" 不是 {name} 的取值' + (f'（是不是 "{guess}"？）' if guess else ""),
                number,
                col,
                f"{name} 的取值：" + "、".join(members),
            )


def _text_literals(expr: Expr) -> list[str]:
    """The text values a cell compares its column with (`>= 部门经理`, `in [主管, 总监]`)."""
    found: list[str] = []
    if isinstance(expr, Compare):
        for side in (expr.left, expr.right):
            found.extend(_text_literals(side))
    elif isinstance(expr, ListExpr):
        for item in expr.items:
            found.extend(_text_literals(item))
    elif isinstance(expr, Const) and isinstance(expr.value, str):
        found.append(expr.value)
    else:
        for child in getattr(expr, "__dict__", {}).values():
            if isinstance(child, Expr):
                found.extend(_text_literals(child))
            elif isinstance(child, tuple):
                found.extend(v for c in child if isinstance(c, Expr) for v in _text_literals(c))
    return found


def import_table(
    file_name: str,
    data: bytes,
    ruleset: Ruleset,
    kinds: Mapping[str, KindSchema],
    calendars: Mapping[str, BusinessCalendar],
    *,
    table_id: str | None = None,
) -> tuple[str | None, list[RulesetError]]:
    """The ruleset's YAML text with one table's rows, default row, hit policy and aggregation taken from a
    sheet (the sheet names its table in B1), checked as a draft is; or every error, positioned by cell."""
    text, _loaded, errors = load_table_sheet(file_name, data, ruleset, kinds, calendars, table_id=table_id)
    return text, errors


def load_table_sheet(
    file_name: str,
    data: bytes,
    ruleset: Ruleset,
    kinds: Mapping[str, KindSchema],
    calendars: Mapping[str, BusinessCalendar],
    *,
    table_id: str | None = None,
) -> tuple[str | None, Ruleset | None, list[RulesetError]]:
    """`import_table` with the ruleset loaded from the new text (the checked result, ready to use)."""
    with gcpause.paused():  # a large sheet's cells and rows: rulesvc.gcpause
        return _load_table_sheet(file_name, data, ruleset, kinds, calendars, table_id)


def _load_table_sheet(
    file_name: str,
    data: bytes,
    ruleset: Ruleset,
    kinds: Mapping[str, KindSchema],
    calendars: Mapping[str, BusinessCalendar],
    table_id: str | None,
) -> tuple[str | None, Ruleset | None, list[RulesetError]]:
    grids, errors = read_grids(file_name, data)
    if errors:
        return None, None, errors
    ids = {t.id: t for t in ruleset.tables}
    chosen = [
        (where, grid)
        for where, grid in grids
        if grid
        and grid[0][:1] == [TITLE]
        and len(grid[0]) > 1
        and (table_id is None or grid[0][1] == table_id)
    ]
    if not chosen:
        wanted = f"规则表 {table_id}" if table_id else "规则表"
        return (
            None,
            None,
            [
                RulesetError(
                    "sheet.no_table",
                    f"没有找到{wanted}的工作表（A1 写「{TITLE}」，B1 写表名）",
                    CellLocation(grids[0][0] if grids else file_name, 1, 1),
                    "先用 rulesvc tables export 导出，在导出的表格里修改",
                )
            ],
        )
    where, grid = chosen[0]
    name = grid[0][1].strip()
    table = ids.get(name)
    if table is None:
        guess = closest(name, ids)
        return (
            None,
            None,
            [
                RulesetError(
                    "sheet.unknown_table",
                    f"规则集 {ruleset.name} 没有规则表「{name}」",
                    CellLocation(where, 1, 2),
                    f"是不是「{guess}」？" if guess else "规则表：" + "、".join(ids),
                )
            ],
        )
    kind = kinds[ruleset.kind]
    reader = _SheetReader(where, grid, table, kind)
    rows, default, hit, aggregate = reader.read()
    if default is None or any(e.code in _STRUCTURE for e in reader.errors):
        return None, None, sorted(reader.errors, key=RulesetError.sort_key)
    text = _with_rows(ruleset, table, rows, default, hit, aggregate)
    loaded, found = load_ruleset(ruleset.file, text, kinds, calendars)
    if found or reader.errors:
        reported = {(e.location.line, e.location.col) for e in reader.errors}
        moved = [
            e
            for e in _to_cells(found, reader, text, ruleset.file)
            if (e.location.line, e.location.col) not in reported
        ]
        return None, None, sorted([*reader.errors, *moved], key=RulesetError.sort_key)
    assert loaded is not None
    final, final_ruleset = _as_written(ruleset, table, text, loaded)
    return final, final_ruleset, []


def _row_key(row: Row) -> tuple[Any, ...]:
    """What a row says, positions aside (cheap: 5,000 rows in a few hundredths of a second)."""
    then = tuple((a.type, dict(a.params), a.duration, a.warnings) for a in row.then)
    return (row.id, row.index, dict(row.cell_texts), dict(row.output_texts), then)


def _span(layout: _Layout, key: str, lines: list[str]) -> tuple[int, int] | None:
    """Lines [start, stop) of one key of the table's item, trailing blank and comment lines left out."""
    names = [name for name, _line, _col in layout.keys]
    if key not in names:
        return None
    index = names.index(key)
    start = layout.keys[index][1]
    stop = layout.keys[index + 1][1] if index + 1 < len(names) else layout.end
    while stop - 1 > start and (not lines[stop - 1].strip() or lines[stop - 1].lstrip().startswith("#")):
        stop -= 1
    return start, stop


def _as_written(ruleset: Ruleset, table: Table, text: str, loaded: Ruleset) -> tuple[str, Ruleset]:
    """The imported text with every row (and the default row) the sheet left as it was written as it was in
    the file — its comments, its block layout — and the file itself when nothing changed. A row keeps its
    text only where it stands: the same item of the same block sequence at the same column, whose lines
    read as that row in the file, reads as that row here too; so the text says what `text` says and the
    ruleset loaded from `text` is the answer (not loaded twice: its positions are those of `text`)."""
    new = next(t for t in loaded.tables if t.id == table.id)
    same = [
        index < len(table.rows) and _row_key(table.rows[index]) == _row_key(row)
        for index, row in enumerate(new.rows)
    ]
    same_default = _row_key(table.default) == _row_key(new.default)
    if (
        all(same)
        and len(new.rows) == len(table.rows)
        and same_default
        and (new.hit, new.aggregate)
        == (
            table.hit,
            table.aggregate,
        )
    ):
        return ruleset.source_text, ruleset
    if not any(same) and not same_default:
        return text, loaded
    old_lines, new_lines = ruleset.source_text.splitlines(), text.splitlines()
    old_layout = _layout_of_events(
        ruleset.source_text, table.id, len(old_lines), [r.location.line - 1 for r in table.rows]
    )
    new_layout = _layout_of_events(text, table.id, len(new_lines), [r.location.line - 1 for r in new.rows])
    rows_span = _span(old_layout, "rows", old_lines) if old_layout else None
    if old_layout is None or new_layout is None or rows_span is None:
        return text, loaded
    starts = [r.location.line - 1 for r in table.rows] + [rows_span[1]]
    replace: list[tuple[int, int, list[str]]] = []  # (start, stop, lines) in the new text
    for index, row in enumerate(new.rows):
        old = table.rows[index] if same[index] else None
        if old is not None and old.location.col == row.location.col:
            replace.append(
                (row.location.line - 1, row.location.line, old_lines[starts[index] : starts[index + 1]])
            )
    old_default, new_default = (
        _span(old_layout, "default", old_lines),
        _span(new_layout, "default", new_lines),
    )
    if same_default and old_default and new_default:
        replace.append((*new_default, old_lines[old_default[0] : old_default[1]]))
    out = list(new_lines)
    for start, stop, kept in sorted(replace, reverse=True):
        out[start:stop] = kept
    return "\n".join(out) + "\n", loaded


# errors after which the sheet's rows cannot be put into the table at all
_STRUCTURE = frozenset(
    {"sheet.missing_column", "sheet.unknown_column", "sheet.duplicate_column", "sheet.duplicate_default"}
)


def _flow_map(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{_quoted(key)}: {value}" for key, value in pairs) + "}"


_PLAIN = re.compile(r"[^\W\d][\w.\-]*\Z")
_NOT_TEXT = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})


def _quoted(text: str) -> str:
    """Text as a YAML flow scalar that reads back as the same text: plain when it is a simple word, else in
    double quotes (JSON's string syntax is YAML's)."""
    if _PLAIN.match(text) and text.lower() not in _NOT_TEXT:
        return text
    return json.dumps(text, ensure_ascii=False)


def _output_text(text: str) -> str:
    """An output cell: a number, true/false, null or a date stays what it is (YAML reads its type); text is
    quoted as needed."""
    src, _ = load_yaml("cell", text)
    value = src.data if src is not None else text
    if isinstance(value, str) or (value is None and text not in ("null", "~")):
        return _quoted(text)
    return text if "\n" not in text else _quoted(text)


def _with_rows(
    ruleset: Ruleset,
    table: Table,
    rows: list[list[tuple[str, str]]],
    default: list[tuple[str, str]],
    hit: str,
    aggregate: str,
) -> str:
    """The ruleset text with the table's `rows:` and `default:` replaced (one flow mapping per row) and its
    `hit:` / `aggregate:` set; the rest of the file, comments included, stays as written."""
    text = ruleset.source_text
    lines = text.splitlines()
    row_lines = [row.location.line - 1 for row in table.rows]
    if [row.index for row in table.rows] != list(range(1, len(table.rows) + 1)):
        row_lines = []  # a row is missing (the file has errors): read the whole file
    layout = _layout_of_events(text, table.id, len(lines), row_lines) or _layout_of_positions(
        ruleset, table.id, len(lines)
    )
    if layout.flow:
        return _with_rows_rewritten(ruleset, table, rows, default, hit, aggregate)
    keys = [key for key, _line, _col in layout.keys]
    key_lines = [line for _key, line, _col in layout.keys]
    end = layout.end
    indent = " " * layout.keys[0][2]
    spans: dict[str, tuple[int, int]] = {}
    for index, key in enumerate(keys):
        stop = key_lines[index + 1] if index + 1 < len(keys) else end
        while stop - 1 > key_lines[index] and (
            not lines[stop - 1].strip() or lines[stop - 1].lstrip().startswith("#")
        ):
            stop -= 1
        spans[str(key)] = (key_lines[index], stop)
    replaced: dict[str, list[str]] = {
        "rows": [
            f"{indent}rows:" + (_comment(lines[spans["rows"][0]]) if "rows" in spans else ""),
            *(f"{indent}  - {_flow_map(row)}" for row in rows),
        ]
        if rows
        else [f"{indent}rows: []"],
        "default": [f"{indent}default: {_flow_map(default)}" + _comment(lines[spans["default"][0]])]
        if "default" in spans
        else [],
    }
    if hit != table.hit or "hit" in spans:
        replaced["hit"] = [f"{indent}hit: {hit}" + _comment(lines[spans["hit"][0]] if "hit" in spans else "")]
    replaced["aggregate"] = [f"{indent}aggregate: {aggregate}"] if aggregate else []
    out: list[str] = lines[: key_lines[0]]
    for key in keys:
        start, stop = spans[str(key)]
        out.extend(replaced.pop(str(key), lines[start:stop]))
        out.extend(
            lines[stop : key_lines[keys.index(key) + 1]]
            if keys.index(key) + 1 < len(keys)
            else lines[stop:end]
        )
    for missing in ("hit", "aggregate", "rows", "default"):
        out[len(lines[: key_lines[0]]) + 1 : len(lines[: key_lines[0]]) + 1] = replaced.pop(missing, [])
    out.extend(lines[end:])
    return "\n".join(out) + "\n"


def _comment(line: str) -> str:
    """A line's trailing comment (`  # 其余…`), kept when the line is rewritten."""
    match = re.search(r"\s+#\s.*$", line)
    return match.group(0) if match else ""


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where one table's item is in a ruleset file: its keys (name, line, column; 0-based), the line where
    the item ends, and whether it is written in flow style (then the file is rewritten through ruamel)."""

    keys: list[tuple[str, int, int]]
    end: int
    flow: bool


def _layout_of_events(
    text: str, table_id: str, line_count: int, row_lines: list[int] | None = None
) -> _Layout | None:
    """The layout read from libyaml's event stream (no containers built), None when the file has what
    libyaml may read otherwise than ruamel (anchors, aliases, tags) or cannot be read alike (then the
    positioned reader answers). `row_lines`: the first line (0-based) of each of the table's rows, in
    order; the rows between the first and the last are blanked before reading (their lines stay, so every
    key keeps its line), so a 5,000-row table costs what a 2-row one does."""
    if row_lines and len(row_lines) > 2 and all(a < b for a, b in itertools.pairwise(row_lines)):
        lines = text.split("\n")
        lines[row_lines[1] : row_lines[-1]] = [""] * (row_lines[-1] - row_lines[1])
        text = "\n".join(lines)
    try:
        events = list(yaml.parse(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return None
    for event in events:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            return None
        if isinstance(event, yaml.NodeEvent) and getattr(event, "tag", None) not in (None, "!"):
            return None

    def skip(index: int) -> int:
        """The index after the node that starts at `index`."""
        depth = 0
        while True:
            event = events[index]
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            index += 1
            if depth == 0:
                return index

    if len(events) < 4 or not isinstance(events[2], yaml.MappingStartEvent):
        return None
    index, top_keys, tables_at = 3, [], 0
    while not isinstance(events[index], yaml.MappingEndEvent):
        key = events[index]
        if not isinstance(key, yaml.ScalarEvent):
            return None
        top_keys.append((key.value, _mark(key)[0]))
        if key.value == "tables":
            tables_at = index + 1
        index = skip(index + 1)
    if not tables_at or not isinstance(events[tables_at], yaml.SequenceStartEvent):
        return None
    if getattr(events[tables_at], "flow_style", False):
        return _Layout([], 0, True)
    items: list[tuple[int, bool, list[tuple[str, int, int]], str | None]] = []
    index = tables_at + 1
    while not isinstance(events[index], yaml.SequenceEndEvent):
        item = events[index]
        if not isinstance(item, yaml.MappingStartEvent):
            return None
        index, keys, item_id = index + 1, [], None
        while not isinstance(events[index], yaml.MappingEndEvent):
            key, value = events[index], events[index + 1]
            if not isinstance(key, yaml.ScalarEvent):
                return None
            keys.append((key.value, *_mark(key)))
            if key.value == "id" and isinstance(value, yaml.ScalarEvent):
                item_id = value.value
            index = skip(index + 1)
        items.append((_mark(item)[0], bool(item.flow_style), keys, item_id))
        index += 1
    position = next((n for n, found in enumerate(items) if found[3] == table_id), None)
    if position is None:
        return None
    _line, flow, keys, _id = items[position]
    if position + 1 < len(items):
        end = items[position + 1][0]
    else:
        after = [line for name, line in top_keys[[n for n, _ in top_keys].index("tables") + 1 :]]
        end = after[0] if after else line_count
    return _Layout(keys, end, flow or not keys or len({line for _k, line, _c in keys}) != len(keys))


def _mark(event: yaml.Event) -> tuple[int, int]:
    mark = event.start_mark
    assert mark is not None
    return mark.line, mark.column


def _layout_of_positions(ruleset: Ruleset, table_id: str, line_count: int) -> _Layout:
    """The layout read by the positioned reader (ruamel's positions, as errors use them)."""
    src, _ = load_yaml(ruleset.file, ruleset.source_text)
    assert src is not None
    data = src.data
    tables = data["tables"]
    position = next(i for i, t in enumerate(tables) if str(t.get("id")) == table_id)
    item = tables[position]
    keys = [(str(k), int(item.lc.key(k)[0]), int(item.lc.key(k)[1])) for k in item]
    lines = ruleset.source_text.splitlines()
    flow = len({line for _k, line, _c in keys}) != len(keys) or (
        item.lc.line == tables.lc.line and "[" in lines[item.lc.line]
    )
    if position + 1 < len(tables):
        end = int(tables.lc.item(position + 1)[0])
    else:
        top = list(data)
        after = top.index("tables") + 1
        end = int(data.lc.key(top[after])[0]) if after < len(top) else line_count
    return _Layout(keys, end, flow)


def _with_rows_rewritten(
    ruleset: Ruleset,
    table: Table,
    rows: list[list[tuple[str, str]]],
    default: list[tuple[str, str]],
    hit: str,
    aggregate: str,
) -> str:
    """The same through ruamel's writer, for a table written in flow style (`- {id: ..., rows: [...]}`)."""
    yaml = _editor()
    document = yaml.load(ruleset.source_text)
    item = next(t for t in document["tables"] if str(t.get("id")) == table.id)
    if hit != table.hit or "hit" in item:
        item["hit"] = hit
    if aggregate:
        item["aggregate"] = aggregate
    elif "aggregate" in item:
        del item["aggregate"]
    item["rows"] = _flow(CommentedSeq(yaml.load(_flow_map(row)) for row in rows))
    item["default"] = _flow(yaml.load(_flow_map(default)))
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _to_cells(errors: list[RulesetError], reader: _SheetReader, text: str, file: str) -> list[RulesetError]:
    """Errors the loader found in the YAML made from the sheet, moved to the cells they come from."""
    src, _ = load_yaml(file, text)
    assert src is not None
    item = next(t for t in src.data["tables"] if str(t.get("id")) == reader.table.id)
    lines: dict[int, tuple[int, list[tuple[int, int]]]] = {}  # YAML line → sheet row, [(YAML col, sheet col)]

    def place(mapping: Any, sheet_row: int) -> None:
        spots = [(0, 2)]
        for key in mapping:
            if key == "id":
                spots.append((mapping.lc.value(key)[1], 2))
            elif key in reader.columns:
                spots.append((mapping.lc.key(key)[1], reader.columns[key]))
        lines[mapping.lc.line + 1] = (sheet_row, sorted(spots))

    for index, raw_row in enumerate(item["rows"]):
        place(raw_row, reader.sheet_rows[index])
    place(item["default"], reader.default_row)
    moved = []
    for error in errors:
        spot = lines.get(error.location.line) if error.location.file == file else None
        if spot is None:
            moved.append(
                RulesetError(error.code, error.message, CellLocation(reader.where, 1, 2), error.hint)
                if error.location.file == file
                else error
            )
            continue
        sheet_row, spots = spot
        col = max((sheet_col for yaml_col, sheet_col in spots if yaml_col < error.location.col), default=2)
        moved.append(
            RulesetError(error.code, error.message, CellLocation(reader.where, sheet_row, col), error.hint)
        )
    return sorted(moved, key=RulesetError.sort_key)


def table_shape(table: Table) -> Any:
    """What a table says, without where it was written (locations): equal for a table and its round trip
    through a sheet."""
    return _shape(table)


def _shape(value: Any) -> Any:
    if isinstance(value, Expr):
        return value  # expressions compare without their positions
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(
                (f.name, _shape(getattr(value, f.name)))
                for f in dataclasses.fields(value)
                if f.name not in ("location", "index")
            ),
        )
    if isinstance(value, Mapping):
        return tuple((key, _shape(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return tuple(_shape(item) for item in value)
    return value
