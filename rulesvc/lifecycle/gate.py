"""The test gate: every compliance case (shipped and uploaded) run against a candidate book.

The case corpus is a mapping case file → YAML text: the rules folder's `cases/*.yaml` (keyed by file stem),
overlaid by the case files published with each version (latest publication wins per file), overlaid by the
files a draft uploads. So a change that moves a threshold ships the cases that pin the new threshold, and
later drafts are tested against them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rulesvc.audit import canonical, sha256_hex
from rulesvc.cases.model import Case, load_case_text
from rulesvc.cases.runner import format_failure, run_cases
from rulesvc.errors import RulesetError
from rulesvc.lang.loader import RulesFolder
from rulesvc.model import Decision, Event
from rulesvc.rulebook import RuleBook
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.storage.ruleset_records import VersionRecord


def case_label(file: str) -> str:
    """How a case file is named in errors and failures."""
    return f"cases/{file}.yaml"


def shipped_cases(folder: RulesFolder) -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in folder.case_files}


def corpus(shipped: Mapping[str, str], versions: Iterable[VersionRecord]) -> dict[str, str]:
    """The case files in force: shipped ones overlaid by each publication's, in publication order."""
    files = dict(shipped)
    for record in sorted(versions, key=lambda r: r.seq):
        files.update(record.cases)
    return files


def corpus_hash(files: Mapping[str, str]) -> str:
    return sha256_hex(canonical(dict(sorted(files.items()))))


def load_corpus(files: Mapping[str, str]) -> tuple[list[Case], list[RulesetError]]:
    cases: list[Case] = []
    errors: list[RulesetError] = []
    for name in sorted(files):
        found, problems = load_case_text(case_label(name), files[name])
        cases.extend(found)
        errors.extend(problems)
    return cases, sorted(errors, key=RulesetError.sort_key)


def check_case_files(files: Mapping[str, str]) -> list[RulesetError]:
    return load_corpus(files)[1]


class LockedBook:
    """A book whose evaluations take the process's engine lock one at a time (live traffic interleaves)."""

    def __init__(self, book: RuleBook, lock: threading.Lock | None) -> None:
        self.book = book
        self.calendars: Mapping[str, BusinessCalendar] = book.calendars
        self._lock = lock

    def evaluate(self, event: Event) -> Decision:
        if self._lock is None:
            return self.book.evaluate(event)
        with self._lock:
            return self.book.evaluate(event)


def run_gate(
    book: RuleBook, cases: Sequence[Case], files: Mapping[str, str], lock: threading.Lock | None
) -> dict[str, Any]:
    """The JSON test report: counts, coverage, and each failing case with the readable expected/actual."""
    report = run_cases(LockedBook(book, lock), cases, book.all_refs())
    failures = [
        {
            "name": result.case.name,
            "file": result.case.location.file,
            "line": result.case.location.line,
            "col": result.case.location.col,
            "problems": list(result.failures) + ([result.error] if result.error else []),
            "text": format_failure(result),
        }
        for result in report.failed
    ]
    return {
        "total": len(report.results),
        "passed": len(report.results) - len(failures),
        "failed": len(failures),
        "coverage": round(report.coverage, 4),
        "uncovered": report.uncovered,
        "failures": failures,
        "cases_sha256": corpus_hash(files),
    }


def summary(tests: Mapping[str, Any]) -> dict[str, Any]:
    """What a chain entry records of a test report."""
    return {
        "passed": tests.get("passed", 0),
        "failed": tests.get("failed", 0),
        "cases_sha256": tests.get("cases_sha256", ""),
    }
