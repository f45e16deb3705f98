"""Reading and writing grids of text: XLSX (openpyxl) and CSV, and the cell positions errors point at."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from openpyxl.utils import get_column_letter

from rulesvc.errors import Location, RulesetError

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
            grid = [[cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
            grids.append((f"{file_name}!{sheet.title}", grid))
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


def write_csv(grid: Grid) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens Chinese text right."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(grid)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def padded(grid: Grid, width: int) -> Grid:
    return [[*row, *([""] * (width - len(row)))][:width] if len(row) < width else row for row in grid]
