"""Trying a ruleset's case file without storing anything (the console's 测试用例 page): the ruleset — a
version's or a draft's text — in place among the other rulesets' versions in force now, and one case of
the file or all of them run on the virtual clock, as the draft gate's first scenario runs them."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from rulesvc.cases.model import load_case_text
from rulesvc.cases.runner import CaseResult, run_cases
from rulesvc.errors import RulesetError
from rulesvc.lifecycle.errors import BadRequestError
from rulesvc.lifecycle.gate import LockedBook, case_label
from rulesvc.lifecycle.queries import RulesetQueries


@dataclass(frozen=True)
class CaseTrial:
    """The results of the cases run (in file order), or the file's errors when it does not load."""

    results: tuple[CaseResult, ...]
    errors: tuple[RulesetError, ...]
    indexes: tuple[int, ...]
    """Each result's position in the file (0-based)."""
    coverage: float = 1.0


def try_cases(
    queries: RulesetQueries,
    name: str,
    content: str,
    case_text: str,
    lock: threading.Lock | None,
    only: int | None = None,
) -> CaseTrial:
    """Run case `only` (0-based) of `case_text`, or every case, on `content` as ruleset `name`."""
    cases, errors = load_case_text(
        case_label(name), case_text, queries.factory.kinds, now=queries.clock.now()
    )
    if errors:
        return CaseTrial((), tuple(errors), ())
    indexes = list(range(len(cases)))
    if only is not None:
        if not 0 <= only < len(cases):
            raise BadRequestError(f"样例文件中没有第 {only + 1} 个样例", {"index": only})
        indexes = [only]
    ruleset = queries.factory.ruleset(name, content)
    book = queries.with_draft(queries.registry.timeline.at(queries.clock.now()), ruleset)
    report = run_cases(LockedBook(book, lock), [cases[i] for i in indexes], book.all_refs())
    return CaseTrial(tuple(report.results), (), tuple(indexes), report.coverage)
