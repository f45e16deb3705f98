"""Where a draft leaves the gate weaker than `make test` holds it: what the approver must accept explicitly.

`make test` requires every rule and table row to be fired by some case (100 % coverage). A draft that falls
short, or that removes the only case covering a rule, a row or a threshold, states a reason when it is
submitted, and the approver accepts these *gaps* explicitly. Removing a case whose expectation the draft no
longer meets (the change it pinned is the change being made) is shown as a *warning*.

A threshold is a number a rule condition or a table cell compares a ticket field with (`ticket.amount <
5000`, `金额: "< 5000"`); a case pins it when one of its events carries exactly that value.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from rulesvc.cases.model import Case
from rulesvc.cases.runner import Report, run_cases
from rulesvc.lang import to_text
from rulesvc.lang.model import Ruleset
from rulesvc.lifecycle.gate import GateRun, LockedBook

_CELL = re.compile(r"^\s*(?:<=|>=|<|>|==|=|!=)?\s*(-?\d+(?:\.\d+)?)\s*$")
_CONDITION = re.compile(r"ticket\.([\w.]+)\s*(?:<=|>=|<|>|==|!=)\s*(-?\d+(?:\.\d+)?)")

Threshold = tuple[str, Decimal]  # (ticket field, value)


def thresholds(ruleset: Ruleset) -> set[Threshold]:
    found: set[Threshold] = set()
    for rule in ruleset.rules:
        if rule.when is not None:
            found.update((f, Decimal(v)) for f, v in _CONDITION.findall(to_text(rule.when)))
    for table in ruleset.tables:
        for row in table.rows:
            for column, text in row.cell_texts.items():
                source = table.input_texts.get(column, "")
                match = _CELL.match(text)
                if match and source.startswith("ticket."):
                    found.add((source[len("ticket.") :], Decimal(match.group(1))))
    return found


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def pins(case: Case, threshold: Threshold) -> bool:
    field, value = threshold
    return any(_number(event.ticket.get(field)) == value for event in case.events)


def _show(threshold: Threshold) -> str:
    return f"ticket.{threshold[0]} = {threshold[1]}"


def findings(
    name: str,
    removed: Sequence[Case],
    primary: GateRun,
    report: Report,
    draft: Ruleset,
    uncovered: Sequence[str],
    lock: threading.Lock | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(gaps, warnings) of a draft: `report` is the draft's run of its first scenario, `removed` the cases
    its own case file drops (from the version it is based on), `draft` the draft's ruleset (a threshold it
    no longer has needs no case), `uncovered` the rules and rows no case fires in some scenario."""
    gaps: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for ref in uncovered:
        gaps.append(
            {"kind": "uncovered", "ref": ref, "message": f"没有任何样例触发 {ref}（覆盖率不足 100%）"}
        )
    if not removed:
        return gaps, warnings
    kept = [result.case for result in report.results]
    covered = report.covered
    dropped = run_cases(LockedBook(primary.book, lock), removed, primary.book.all_refs())
    for result in dropped.results:
        case = result.case.name
        for ref in sorted(result.fired - covered):
            gaps.append(
                {
                    "kind": "sole_coverage",
                    "case": case,
                    "ref": ref,
                    "message": f"删除的样例「{case}」是唯一触发 {ref} 的样例",
                }
            )
        if not result.passed:
            warnings.append(
                {
                    "kind": "removed_case_fails",
                    "case": case,
                    "message": f"删除的样例「{case}」在草稿下不再成立：草稿改变了它约束的行为",
                }
            )
    for threshold in sorted(thresholds(draft)):
        pinned_by = [c.name for c in removed if pins(c, threshold)]
        if pinned_by and not any(pins(c, threshold) for c in kept if c.file == f"cases/{name}.yaml"):
            gaps.append(
                {
                    "kind": "sole_threshold",
                    "case": pinned_by[0],
                    "ref": _show(threshold),
                    "message": f"删除的样例「{'、'.join(pinned_by)}」是唯一卡住阈值 {_show(threshold)} 的样例",
                }
            )
    return gaps, warnings


def removed_cases(old: Mapping[str, Case], new: Mapping[str, Case]) -> list[Case]:
    return [case for case_name, case in old.items() if case_name not in new]
