"""Reading and writing grids of text: XLSX (openpyxl) and CSV, and the cell positions errors point at."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from openpyxl.utils import get_column_letter

from rulesvc.errors import Location, RulesetError
from rulesvc.spreadsheet import write_grid

Grid = list[list[str]]


@dataclass(frozen=True)
class CellLocation(Location):
    """A cell of a sheet: `file` is `book.xlsx!Sheet` (or `table.csv`), line the row, col the column (1-based);
    shown as Excel writes a reference, `book.xlsx!Sheet!C7`."""

    def __str__(self) -> str:
        return f"{self.file}!{get_column_letter(max(self.col, 1))}{self.line}"


def is_xlsx(file_name: str) -> bool:
    return file_name.lower().endswith((".xlsx", ".xlsm"))


def cell_text(value: object) -> str:
    """A cell's value as the text a person typed (Excel turns `100` into a number, `TRUE` into a bool)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f") if value == value else "nan"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def read_grids(file_name: str, data: bytes) -> tuple[list[tuple[str, Grid]], list[RulesetError]]:
    """Every sheet of a workbook (or the one grid of a CSV file) as rows of text, with the name errors use
    for it (`book.xlsx!Sheet` / `table.csv`)."""
    if is_xlsx(file_name):
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:
            return [], [
                RulesetError(
                    "sheet.unreadable",
                    f"无法读取工作簿（{type(exc).__name__}）",
                    Location(file_name, 1, 1),
                    "请用 Excel 另存为 .xlsx 后再上传",
                )
            ]
        grids = []
        for sheet in book.worksheets:
            rows = _values(sheet)
            if rows is None:  # not a read-only sheet as this openpyxl lays it out: its public reader
                rows = [list(row) for row in sheet.iter_rows(values_only=True)]
            grids.append((f"{file_name}!{sheet.title}", [[cell_text(v) for v in row] for row in rows]))
        book.close()
        return grids, []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")  # Excel in Chinese saves CSV in GBK
        except UnicodeDecodeError:
            return [], [
                RulesetError("sheet.unreadable", "CSV 文件不是 UTF-8 或 GBK 编码", Location(file_name, 1, 1))
            ]
    return [(file_name, [list(row) for row in csv.reader(io.StringIO(text))])], []


_INLINE = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}is"
_TEXT = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}t"
_FORMULA = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}f"
_VALUE = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}v"
_RUN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}r"


def _inline_text(element: Any) -> str:
    """An inline string's text as openpyxl gives it: its plain text, then its runs' (not phonetic guides)."""
    plain = element.findtext(_TEXT)
    return (plain or "") + "".join(run.findtext(_TEXT) or "" for run in element.findall(_RUN))


def _values(sheet: Any) -> list[list[object]] | None:
    """A read-only sheet's values row by row, as `iter_rows(values_only=True)` gives them but faster: text
    cells (inline, shared, formula results) are read here, every other cell by openpyxl's own parser (dates
    need the workbook's styles). Most of a large sheet's read was openpyxl building a rich-text object for
    each inline string; None when this openpyxl does not have the reader's parts this relies on."""
    from openpyxl.utils.cell import column_index_from_string
    from openpyxl.worksheet._reader import WorkSheetParser

    book = sheet.parent
    try:
        source, shared = sheet._get_source(), sheet._shared_strings
        epoch, dates, spans = book.epoch, book._date_formats, book._timedelta_formats
    except AttributeError:
        return None

    columns: dict[str, int] = {}

    class Parser(WorkSheetParser):  # type: ignore[misc]
        def parse_cell(self, element: Any) -> dict[str, Any]:
            kind = element.get("t")
            if kind not in ("inlineStr", "s", "str") or element.find(_FORMULA) is not None:
                return super().parse_cell(element)  # type: ignore[no-any-return]
            reference = element.get("r")
            if reference:
                letters = reference.rstrip("0123456789")
                column = columns.get(letters) or columns.setdefault(
                    letters, column_index_from_string(letters)
                )
                self.col_counter = column
            else:
                self.col_counter += 1
            if kind == "inlineStr":
                child = element.find(_INLINE)
                value = None if child is None else _inline_text(child)
            else:
                text = element.findtext(_VALUE)
                value = (shared[int(text)] if kind == "s" else text) if text else None
            return {"column": self.col_counter, "value": value}

    rows: list[list[object]] = []
    with source:
        parser = Parser(
            source, shared, data_only=True, epoch=epoch, date_formats=dates, timedelta_formats=spans
        )
        for number, cells in parser.parse():
            rows.extend([] for _ in range(len(rows), number - 1))
            row: list[object] = [None] * max((c["column"] for c in cells), default=0)
            for cell in cells:
                row[cell["column"] - 1] = cell["value"]
            rows.append(row)
    return rows


def write_csv(grid: Grid) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens Chinese text right."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(grid)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def padded(grid: Grid, width: int) -> Grid:
    return [[*row, *([""] * (width - len(row)))][:width] if len(row) < width else row for row in grid]


@dataclass(frozen=True)
class DropDown:
    """A data-validation list on a column's data rows: `strict` refuses other values (an output's values),
    else the list is offered and other text is allowed (a table cell is a test such as `>= 部门经理`)."""

    name: str
    values: Sequence[str]
    strict: bool = True
    prompt: str = ""


def xlsx_bytes(
    title: str,
    grid: Grid,
    *,
    header_rows: int,
    freeze_col: int,
    lists: Mapping[int, DropDown] | None = None,
    wrapped: frozenset[int] = frozenset(),
    last_fill: bool = False,
) -> bytes:
    """A workbook of one sheet laid out for people by the one writer (`rulesvc.spreadsheet.write_grid`:
    row 1 bold, headers frozen, every cell text so Excel keeps `00123`, `1e3` and `== 5` as typed,
    `wrapped` columns wrapping their lines), the other header rows shaded, drop-down lists on the columns
    of `lists` (1-based) with room for rows added in Excel; `last_fill` shades the last row (a table's
    default row)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title(title)
    write_grid(sheet, grid, header_rows=header_rows, freeze_col=freeze_col, wrapped=wrapped, as_text=True)
    header = PatternFill("solid", fgColor="DDEBF7")
    for row_number in range(2, header_rows + 1):
        for cell in sheet[row_number]:
            cell.fill = header
            cell.font = Font(bold=row_number == 3)
    if last_fill:
        for cell in sheet[len(grid)]:
            cell.fill = PatternFill("solid", fgColor="FFF2CC")
    last = max(len(grid), header_rows + 1) + 200  # room for rows added in Excel
    for col, drop in (lists or {}).items():
        values = [str(v) for v in drop.values]
        validation = DataValidation(
            type="list",
            formula1='"' + ",".join(values) + '"',
            allow_blank=True,
            showErrorMessage=drop.strict,
            errorTitle=drop.name,
            error=f"{drop.name} 只能取：" + "、".join(values),
            promptTitle=drop.name,
            prompt=drop.prompt or f"{drop.name} 的取值：" + "、".join(values),
            showInputMessage=not drop.strict,
        )
        letter = get_column_letter(col)
        validation.add(f"{letter}{header_rows + 1}:{letter}{last}")
        sheet.add_data_validation(validation)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheet_title(name: str) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\."""
    title = "".join("_" if char in "[]:*?/\\" else char for char in name)[:31]
    return title or "Sheet1"
