"""Loading a large decision table: `python -m bench.loading [--rows N] [--rounds N]`.

Loads one synthetic routing table of N rows (default 5,000; `bench/engine/synthetic.py`) through the normal
loader, validation and table analysis included, and times it in CPU seconds of this thread:

- `yaml before`: the ruleset file read by ruamel's round-trip parser alone and every cell parsed afresh —
  how every ruleset was read before issue 18;
- `yaml after`: the same file read the way `load_yaml` reads it now (libyaml, positions kept; ruamel only for
  what libyaml does not read alike) with parsed cells shared by text, the garbage collector paused while it
  reads (`rulesvc.gcpause`);
- `xlsx after`: the same table exported to a workbook (`rulesvc.sheets`) and imported from it: the sheet read
  with openpyxl (read-only, values only), its rows written into the ruleset text, that text loaded and checked
  as a draft is (the loaded ruleset is the result);
- `xlsx, 1 cell`: the same with one amount cell changed in the middle of the table (the other rows keep their
  text from the file, the changed one is written anew).

Rounds are interleaved (before, after, before, ...) so a loaded machine slows all alike; the best and the
median of each are printed with the after/before ratio and the 1 s target. The target is a figure, not a
test: it depends on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.engine.synthetic import KIND_YAML, make_table, ruleset_yaml
from rulesvc import gcpause, yamlpos
from rulesvc.lang import parse as parse_module
from rulesvc.lang.kinds import load_kind
from rulesvc.lang.loader import load_ruleset
from rulesvc.sheets import export_table_xlsx
from rulesvc.sheets.tables import load_table_sheet
from rulesvc.sla.calendar import always_open

TARGET_S = 1.0


class _NoCache(dict[str, Any]):
    """A cell cache that keeps nothing (the `before` path parses every cell)."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None


@contextlib.contextmanager
def before_issue_18() -> Iterator[None]:
    """ruamel reads every file; no parsed cell is shared; the garbage collector runs throughout."""
    fast, cells, paused = yamlpos._fast_load, parse_module._CELLS, gcpause.paused
    yamlpos._fast_load = lambda text: yamlpos._SLOW  # type: ignore[assignment]
    parse_module._CELLS = _NoCache()
    gcpause.paused = contextlib.nullcontext  # type: ignore[assignment]
    try:
        yield
    finally:
        yamlpos._fast_load = fast  # type: ignore[assignment]
        parse_module._CELLS = cells
        gcpause.paused = paused


def _cpu(fn: Callable[[], Any]) -> float:
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    kind, errors = load_kind("kinds/route.yaml", KIND_YAML)
    assert kind is not None and not errors, errors
    kinds = {kind.kind: kind}
    calendars = {"24x7": always_open()}
    text = ruleset_yaml(make_table(args.rows))

    def load_yaml_text() -> None:
        parse_module._CELLS.clear()  # every load starts cold
        ruleset, found = load_ruleset("bench-routing.yaml", text, kinds, calendars)
        assert ruleset is not None and not found, found[:3]

    def load_yaml_before() -> None:
        with before_issue_18():
            load_yaml_text()

    cases: dict[str, Callable[[], None]] = {"yaml before": load_yaml_before, "yaml after": load_yaml_text}
    cases["xlsx after"] = _xlsx_loader(text, kinds, calendars)
    cases["xlsx, 1 cell"] = _xlsx_loader(text, kinds, calendars, edited=True)

    for fn in cases.values():  # warm-up: imports, the expression grammar
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_number in range(args.rounds):
        names = list(cases)
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_cpu(cases[name]))

    print(
        f"loading a {args.rows:,}-row decision table, CPU s of this thread, {args.rounds} interleaved rounds"
    )
    print(f"{'':14}{'best':>8}{'median':>8}{'÷ before':>10}   target ≤ {TARGET_S:g} s")
    base = min(times["yaml before"])
    for name, found in times.items():
        best = min(found)
        verdict = "" if name == "yaml before" else ("ok" if best <= TARGET_S else "MISSED")
        print(f"{name:14}{best:8.2f}{statistics.median(found):8.2f}{best / base:9.2f}×   {verdict}")


def _xlsx_loader(text: str, kinds: Any, calendars: Any, *, edited: bool = False) -> Callable[[], None]:
    """Export the table to a workbook once (`edited`: then change one amount cell in its middle, as a person
    would); each call imports it back: the sheet read with openpyxl, its rows written into the ruleset text,
    and that text loaded and checked as a draft is (the loaded ruleset is the result: nothing is loaded
    twice)."""
    from openpyxl import load_workbook

    ruleset, found = load_ruleset("bench-routing.yaml", text, kinds, calendars)
    assert ruleset is not None and not found
    table = ruleset.tables[0]
    data = export_table_xlsx(ruleset, table.id, kinds[ruleset.kind])
    if edited:
        book = load_workbook(io.BytesIO(data))
        sheet = book.active
        assert sheet is not None
        row = 4 + (len(table.rows) // 10) * 5 + 5  # sheet row of a region's last band, mid-table
        amount = str(sheet.cell(row, 4).value)
        assert amount.endswith("..1000000)"), amount
        sheet.cell(row, 4, amount.replace("1000000)", "2000000)"))
        out = io.BytesIO()
        book.save(out)
        data = out.getvalue()
    folder = Path(tempfile.mkdtemp(prefix="bench-loading-"))
    workbook = folder / "table.xlsx"
    workbook.write_bytes(data)

    def load_xlsx() -> None:
        parse_module._CELLS.clear()
        new_text, loaded, errors = load_table_sheet(
            workbook.name, workbook.read_bytes(), ruleset, kinds, calendars
        )
        assert new_text is not None and loaded is not None and not errors, errors[:3]
        assert len(loaded.tables[0].rows) == len(table.rows)
        assert (new_text != ruleset.source_text) == edited

    return load_xlsx


if __name__ == "__main__":
    main()
