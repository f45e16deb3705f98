"""A load-time shim for the synthetic tables (evaluation code is never touched).

The stock loader is quadratic in the number of table rows (measured: 1,000 rows ≈ 3.3 s CPU, 5,000 rows ≈ 39 s
CPU, 111 s wall on this loaded machine), which alone would exceed the time budget. Two functions cause it:

* `rulesvc.lang.yamlpos.Source._content_loc` splits the whole file into lines on every call (one call per
  cell/row location);
* `rulesvc.lang.tables.analyse_table` compares every row with every earlier row (shadow/overlap analysis).

While `fast_load()` is active, `_content_loc` reuses one `splitlines()` per document (identical results) and
tables with more than ANALYSE_LIMIT rows skip the pairwise analysis. The synthetic tables are valid by
construction; the 10- and 100-row tables still go through the full analysis, and every size is checked
against zen-engine and plain Python on sample inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rulesvc.lang import loader, yamlpos

ANALYSE_LIMIT = 200


class _LinesText(str):
    """A document text whose `splitlines()` is computed once."""

    _lines: list[str] | None = None

    def splitlines(self, keepends: bool = False) -> list[str]:  # type: ignore[override]
        if keepends:
            return str.splitlines(self, keepends)
        if self._lines is None:
            self._lines = str.splitlines(self)
        return self._lines


@contextmanager
def fast_load() -> Iterator[None]:
    original_loc = yamlpos.Source._content_loc
    original_analyse = loader.analyse_table

    def content_loc(self: Any, line: int, col: int, value: Any) -> Any:
        if type(self.text) is not _LinesText:
            object.__setattr__(self, "text", _LinesText(self.text))
        return original_loc(self, line, col, value)

    def analyse(table: Any, env: Any) -> Any:
        return [] if len(table.rows) > ANALYSE_LIMIT else original_analyse(table, env)

    yamlpos.Source._content_loc = content_loc  # type: ignore[method-assign]
    loader.analyse_table = analyse
    try:
        yield
    finally:
        yamlpos.Source._content_loc = original_loc  # type: ignore[method-assign]
        loader.analyse_table = original_analyse
