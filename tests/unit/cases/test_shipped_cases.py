"""The shared compliance corpus: every case in rulesets/cases/*.yaml passes, and together they cover 100 %."""

from __future__ import annotations

from pathlib import Path

import pytest

from rulesvc.cases.model import Case, load_case_files
from rulesvc.cases.runner import format_failure, run_case, run_cases
from rulesvc.rulebook import RuleBook

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"


def _load_cases() -> list[Case]:
    cases, errors = load_case_files(sorted((RULESETS / "cases").glob("*.yaml")))
    assert errors == [], [str(e) for e in errors]
    return cases


CASES = _load_cases()


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return RuleBook.load([RULESETS])


def test_corpus_is_complete() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) >= 30
    assert {Path(case.file).stem for case in CASES} == {
        "complaint-sla",
        "expense-approval",
        "loan-approval",
        "loan-routing",
        "loan-sla",
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_shipped_case_passes(book: RuleBook, case: Case) -> None:
    result = run_case(book, case)
    assert result.passed, format_failure(result)


def test_shipped_cases_cover_every_rule_and_table_row(book: RuleBook) -> None:
    report = run_cases(book, CASES, book.all_refs())
    assert report.failed == []
    assert report.uncovered == []
    assert report.coverage == 1.0
