"""The test gate: every compliance case of every ruleset run against a candidate book, as `make test` does.

Cases belong to their ruleset: `cases/<name>.yaml` is versioned with ruleset `<name>` and changes only
through a draft of that ruleset. The case corpus of a set of versions is a mapping case file → YAML text:
the rules folder's `cases/*.yaml` (keyed by file stem; the only source of case files no ruleset owns),
overlaid by each chosen version's own case file. A draft is tested with its own case file in place, against
the versions in force now and against every combination a scheduled version will bring (`scenarios`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rulesvc.audit.chain import canonical, sha256_hex
from rulesvc.cases.model import Case, load_case_text
from rulesvc.cases.runner import Report, format_failure, run_cases
from rulesvc.errors import RulesetError
from rulesvc.lang.loader import RulesFolder
from rulesvc.lang.model import KindSchema
from rulesvc.lifecycle.ports import VersionRecord
from rulesvc.lifecycle.timeline import in_force
from rulesvc.model import Decision, Event
from rulesvc.rulebook import RuleBook
from rulesvc.sla.calendar import BusinessCalendar


def case_label(file: str) -> str:
    """How a case file is named in errors and failures."""
    return f"cases/{file}.yaml"


def shipped_cases(folder: RulesFolder) -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in folder.case_files}


def own_cases(record: VersionRecord) -> dict[str, str]:
    """The case file a version owns (`{name: text}`, or nothing). Versions published before case files
    were bound to their ruleset may carry other rulesets' files too: those are ignored everywhere."""
    return {record.name: record.cases[record.name]} if record.name in record.cases else {}


def corpus(shipped: Mapping[str, str], chosen: Iterable[VersionRecord]) -> dict[str, str]:
    """The case files of these versions (one per ruleset): shipped ones overlaid by each version's own."""
    files = dict(shipped)
    for record in chosen:
        files.update(own_cases(record))
    return files


def corpus_hash(files: Mapping[str, str]) -> str:
    return sha256_hex(canonical(dict(sorted(files.items()))))


def load_corpus(
    files: Mapping[str, str], kinds: Mapping[str, KindSchema] | None = None
) -> tuple[list[Case], list[RulesetError]]:
    """The cases of the files; with `kinds`, every event is validated as ingest does (as `rulesvc test`)."""
    cases: list[Case] = []
    errors: list[RulesetError] = []
    for name in sorted(files):
        found, problems = load_case_text(case_label(name), files[name], kinds)
        cases.extend(found)
        errors.extend(problems)
    return cases, sorted(errors, key=RulesetError.sort_key)


def check_case_files(
    files: Mapping[str, str], kinds: Mapping[str, KindSchema] | None = None
) -> list[RulesetError]:
    return load_corpus(files, kinds)[1]


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


@dataclass(frozen=True)
class Scenario:
    """One combination of the other rulesets' versions a draft will meet once published."""

    label: str
    at: datetime
    chosen: Mapping[str, VersionRecord]

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "at": self.at.isoformat(),
            "versions": {name: record.version for name, record in sorted(self.chosen.items())},
        }


def scenarios(versions: Sequence[VersionRecord], now: datetime, name: str) -> list[Scenario]:
    """The versions in force now, then each distinct combination brought by a scheduled version of another
    ruleset (the draft's own scheduled versions do not matter: the draft takes their place)."""
    others = [v for v in versions if v.name != name]
    result: list[Scenario] = []
    seen: set[tuple[tuple[str, int], ...]] = set()
    for at in [now, *sorted({v.effective_at for v in others if v.effective_at > now})]:
        chosen = in_force(others, at)
        key = tuple(sorted((n, r.version) for n, r in chosen.items()))
        if key in seen:
            continue
        seen.add(key)
        arriving = [f"{r.name} v{r.version}" for r in chosen.values() if r.effective_at == at and at > now]
        label = "现行版本" if not arriving else "、".join(sorted(arriving)) + " 生效后"
        result.append(Scenario(label, at, chosen))
    return result


@dataclass(frozen=True)
class GateRun:
    """One scenario's book and case corpus."""

    scenario: Scenario
    book: RuleBook
    cases: Sequence[Case]
    files: Mapping[str, str]


def run_gate(runs: Sequence[GateRun], lock: threading.Lock | None) -> tuple[dict[str, Any], Report]:
    """The JSON test report over every scenario (a case fails if it fails in any; coverage counts a rule or
    row uncovered if any scenario leaves it uncovered), and the first scenario's raw report."""
    failures: list[dict[str, Any]] = []
    failed: set[tuple[str, str]] = set()
    names: set[tuple[str, str]] = set()
    refs: set[str] = set()
    uncovered: set[str] = set()
    summaries = []
    reports = []
    for index, run in enumerate(runs):
        report = run_cases(LockedBook(run.book, lock), run.cases, run.book.all_refs())
        reports.append(report)
        refs.update(report.all_refs)
        uncovered.update(report.uncovered)
        names.update((r.case.file, r.case.name) for r in report.results)
        for result in report.failed:
            key = (result.case.file, result.case.name)
            if key in failed:
                continue
            failed.add(key)
            prefix = "" if index == 0 else f"[{run.scenario.label}] "
            failures.append(
                {
                    "name": result.case.name,
                    "file": result.case.location.file,
                    "line": result.case.location.line,
                    "col": result.case.location.col,
                    "problems": list(result.failures) + ([result.error] if result.error else []),
                    "codes": list(result.failure_codes) + ([result.error_code] if result.error_code else []),
                    "text": prefix + format_failure(result),
                    "scenario": run.scenario.label,
                }
            )
        summaries.append(
            {**run.scenario.to_json(), "total": len(report.results), "failed": len(report.failed)}
        )
    coverage = 1.0 if not refs else (len(refs) - len(uncovered)) / len(refs)
    tests = {
        "total": len(names),
        "passed": len(names) - len(failed),
        "failed": len(failed),
        "coverage": round(coverage, 4),
        "uncovered": sorted(uncovered),
        "failures": failures,
        "cases_sha256": corpus_hash(runs[0].files) if runs else corpus_hash({}),
        "scenarios": summaries,
    }
    return tests, reports[0] if reports else Report([], [])


def summary(tests: Mapping[str, Any]) -> dict[str, Any]:
    """What a chain entry records of a test report."""
    return {
        "passed": tests.get("passed", 0),
        "failed": tests.get("failed", 0),
        "cases_sha256": tests.get("cases_sha256", ""),
    }
