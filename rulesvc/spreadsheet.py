"""The one XLSX writer: a grid of values laid out the way every workbook of ours looks — bold first row,
header rows frozen, columns wide enough to read (capped), text kept as text. Used by the report downloads,
the evidence files (`write_table`) and the decision-table and case sheets (`write_grid` with their header
rows, frozen columns and text cells; `rulesvc.sheets.cells.xlsx_bytes` adds their shading and lists)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

MAX_WIDTH = 60
MIN_WIDTH = 10
TEXT_FORMAT = "@"
"""Excel's text number format: a cell typed over keeps `00123` and `1e3` as typed."""


def write_grid(
    sheet: Worksheet,
    grid: Sequence[Sequence[Any]],
    *,
    header_rows: int = 1,
    freeze_col: int = 1,
    wrapped: Collection[int] = (),
    as_text: bool = False,
    max_width: int = MAX_WIDTH,
) -> None:
    """`grid` from A1 on (None cells stay empty; a text starting with `=` stays text, not a formula): row 1
    bold, the first `header_rows` rows and the columns before `freeze_col` frozen, the `wrapped` columns
    (1-based) wrapping their lines below the header rows, every cell in Excel's text format when `as_text`,
    each column as wide as its longest line (a CJK character counting two) between MIN_WIDTH and
    `max_width`."""
    for row in grid:
        append_text(sheet, row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    if as_text or wrapped:
        wrap = Alignment(wrap_text=True, vertical="top")
        for line in sheet.iter_rows():
            for cell in line:
                if as_text:
                    cell.number_format = TEXT_FORMAT
                if cell.column in wrapped and cell.row > header_rows:
                    cell.alignment = wrap
    sheet.freeze_panes = sheet.cell(header_rows + 1, freeze_col)
    widths: dict[int, int] = {}
    for row in grid:
        for index, value in enumerate(row, start=1):
            widths[index] = max(widths.get(index, 0), _width(value))
    for index, longest in widths.items():
        width = min(max_width, max(MIN_WIDTH, longest + 2))
        sheet.column_dimensions[get_column_letter(index)].width = width


def write_table(
    sheet: Worksheet,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    wrap: bool = False,
    max_width: int = MAX_WIDTH,
) -> None:
    """A table of `headers` then `rows` (numbers stay numbers); `wrap` wraps long text inside its cell."""
    wrapped = range(1, len(headers) + 1) if wrap else ()
    write_grid(sheet, [list(headers), *rows], wrapped=wrapped, max_width=max_width)


def append_text(sheet: Worksheet, row: Sequence[Any]) -> None:
    """Append a row whose texts stay texts: one starting with `=` is not taken for a formula."""
    values = list(row)
    sheet.append(values)
    if any(isinstance(value, str) and value.startswith("=") for value in values):
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"


def _width(value: Any) -> int:
    """Characters the longest line of a value takes, a CJK character counting two."""
    text = "" if value is None else str(value)
    return max(sum(2 if ord(ch) > 0x2E7F else 1 for ch in line) for line in text.split("\n"))
