"""Tables written to XLSX the way every file of ours looks: bold header row, header frozen, columns wide
enough to read (capped), one sheet per table. Used by the report downloads and the evidence files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

MAX_WIDTH = 60
MIN_WIDTH = 10


def write_table(
    sheet: Worksheet,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    wrap: bool = False,
    max_width: int = MAX_WIDTH,
) -> None:
    """`headers` then `rows` from A1 on; None cells stay empty; `wrap` wraps long text inside its cell."""
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        append_text(sheet, row)
    sheet.freeze_panes = "A2"
    for index, name in enumerate(headers, start=1):
        longest = max([_width(name)] + [_width(r[index - 1]) for r in rows[:200]])
        sheet.column_dimensions[get_column_letter(index)].width = min(max_width, max(MIN_WIDTH, longest + 2))
    if wrap:
        for line in sheet.iter_rows(min_row=2):
            for cell in line:
                cell.alignment = Alignment(wrap_text=True, vertical="top")


def append_text(sheet: Worksheet, row: Sequence[Any]) -> None:
    """Append a row whose texts stay texts: one starting with `=` is not taken for a formula."""
    sheet.append(list(row))
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str) and cell.value.startswith("="):
            cell.data_type = "s"


def _width(value: Any) -> int:
    """Characters a value takes, a CJK character counting two."""
    text = "" if value is None else str(value)
    first = text.split("\n", 1)[0]
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in first)
