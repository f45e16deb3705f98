"""Spreadsheets for people who keep rules in Excel: decision tables as XLSX or CSV sheets and back.

`rulesvc.sheets.tables`: export one table of a ruleset to a sheet, import a sheet back into the ruleset's
YAML text (a new draft text: nothing here publishes), with every error positioned by cell
(`file.xlsx!Sheet!C7`). `rulesvc.sheets.cases`: a ruleset's compliance cases as a sheet (one row per given
event) and back to a case file's text, checked as an uploaded case file is.
"""

from __future__ import annotations

from rulesvc.sheets.cases import case_shape, cases_grid, export_cases_csv, export_cases_xlsx, import_cases
from rulesvc.sheets.cells import CellLocation
from rulesvc.sheets.tables import (
    export_table_csv,
    export_table_xlsx,
    import_table,
    table_ids,
    table_shape,
)

__all__ = [
    "CellLocation",
    "case_shape",
    "cases_grid",
    "export_cases_csv",
    "export_cases_xlsx",
    "export_table_csv",
    "export_table_xlsx",
    "import_cases",
    "import_table",
    "table_ids",
    "table_shape",
]
