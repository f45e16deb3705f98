"""Running compliance cases on the virtual clock: subset matching, readable diffs, coverage, JUnit.

A failure is a Chinese message with a stable code beside it (`CaseResult.failures` / `failure_codes`):
`case.expected_missing` (an expected action did not happen), `case.forbidden_present` (a forbidden one
did); a case that could not run carries `error` with `error_code` (`case.run_failed`, or the engine's code
of the decision that failed)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree import ElementTree

from rulesvc.cases.model import Case
from rulesvc.errors import InvalidEventError
from rulesvc.events import parse_time
from rulesvc.model import to_jsonable
from rulesvc.sla.simulation import Evaluator, Timeline, simulate


@dataclass(frozen=True)
class Observed:
    """One action as the case saw it: when, and the action's JSON."""

    at: datetime
    action: Mapping[str, Any]

    def describe(self) -> str:
        fields = ", ".join(f"{k}={flow(v)}" for k, v in self.action.items() if k not in ("type", "rule"))
        return f"{self.at.isoformat()}  {self.action['type']}({fields})  ← {self.action.get('rule', '')}"


@dataclass
class CaseResult:
    case: Case
    failures: list[str] = field(default_factory=list)
    failure_codes: list[str] = field(default_factory=list)
    """The code of each failure, in the same order (`EXPECTED_MISSING`, `FORBIDDEN_PRESENT`)."""
    observed: list[Observed] = field(default_factory=list)
    fired: set[str] = field(default_factory=set)
    seconds: float = 0.0
    error: str | None = None
    error_code: str | None = None

    def fail(self, code: str, message: str) -> None:
        self.failures.append(message)
        self.failure_codes.append(code)

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


@dataclass
class Report:
    results: list[CaseResult]
    all_refs: list[str]

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def covered(self) -> set[str]:
        return set().union(*(r.fired for r in self.results)) if self.results else set()

    @property
    def uncovered(self) -> list[str]:
        covered = self.covered
        return [ref for ref in self.all_refs if ref not in covered]

    @property
    def coverage(self) -> float:
        return 1.0 if not self.all_refs else (len(self.all_refs) - len(self.uncovered)) / len(self.all_refs)


def _same(expected: Any, actual: Any) -> bool:
    """Business equality: numbers exactly, times as instants, lists of scalars as sets, dicts as subsets."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and _same(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return False
        # order-insensitive, but each actual item answers one expected item (a multiset match)
        unused = list(actual)
        for item in expected:
            hit = next((i for i, candidate in enumerate(unused) if _same(item, candidate)), None)
            if hit is None:
                return False
            unused.pop(hit)
        return True
    if isinstance(expected, datetime) or isinstance(actual, datetime):
        try:
            return parse_time(expected, "expected") == parse_time(actual, "actual")
        except Exception:
            return False
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float | Decimal) and isinstance(actual, int | float | Decimal):
        try:
            return Decimal(str(expected)) == Decimal(str(actual))
        except InvalidOperation:
            return False
    return bool(expected == actual)


def matches(expected: Mapping[str, Any], observed: Observed) -> bool:
    for key, value in expected.items():
        if key == "at":
            if not _same(value, observed.at):
                return False
        elif key not in observed.action or not _same(value, observed.action[key]):
            return False
    return True


EXPECTED_MISSING = "case.expected_missing"
FORBIDDEN_PRESENT = "case.forbidden_present"
RUN_FAILED = "case.run_failed"


def flow(value: Any) -> str:
    """A value as a case file writes it (YAML flow style): `[sms, email]`, `{type: assign}`; no repr."""
    value = to_jsonable(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    return str(value)


def _fmt(expected: Mapping[str, Any]) -> str:
    return flow(dict(expected))


def observe(timeline: Timeline) -> tuple[list[Observed], set[str]]:
    observed: list[Observed] = []
    fired: set[str] = set()
    for entry in timeline.entries:
        for action in entry.decision.actions:
            observed.append(Observed(entry.at, {**action.to_json()}))
        for rule in entry.decision.fired:
            fired.add(f"{rule.ruleset}/{rule.rule}")
    return observed, fired


def run_case(book: Evaluator, case: Case) -> CaseResult:
    started = time.perf_counter()
    result = CaseResult(case)
    try:
        timeline = simulate(book, case.events, case.until)
    except InvalidEventError as exc:  # an event of the case the service would refuse: its code and text
        result.error = str(exc)
        result.error_code = exc.problems[0].code
        result.seconds = time.perf_counter() - started
        return result
    except Exception as exc:  # a case must report, not crash the run
        result.error = f"{type(exc).__name__}: {exc}"
        result.error_code = RUN_FAILED
        result.seconds = time.perf_counter() - started
        return result
    result.observed, result.fired = observe(timeline)
    if timeline.error is not None:  # the actions before the failing trigger are kept and shown
        failed = timeline.error
        result.error = f"{failed.trigger} @ {failed.at.isoformat()}：{failed.error}"
        result.error_code = str(failed.error.code)
    # each expectation consumes one distinct observed action (subset match, any order)
    used: set[int] = set()
    for expected in case.expect:
        hit = next(
            (i for i, obs in enumerate(result.observed) if i not in used and matches(expected, obs)),
            None,
        )
        if hit is None:
            result.fail(EXPECTED_MISSING, f"期望 {_fmt(expected)}，但没有这样的动作")
        else:
            used.add(hit)
    for forbidden in case.expect_not:
        for obs in result.observed:
            if matches(forbidden, obs):
                result.fail(FORBIDDEN_PRESENT, f"不应出现 {_fmt(forbidden)}，但出现了 {obs.describe()}")
    result.seconds = time.perf_counter() - started
    return result


def run_cases(book: Evaluator, cases: Sequence[Case], all_refs: Iterable[str]) -> Report:
    return Report([run_case(book, case) for case in cases], list(all_refs))


def format_failure(result: CaseResult) -> str:
    lines = [f"FAIL 未通过 {result.case.name}  （{result.case.location}）"]
    if result.error:
        lines.append(f"  运行出错 [{result.error_code}]：{result.error}")
    lines.extend(
        f"  {failure} [{code}]" for failure, code in zip(result.failures, result.failure_codes, strict=True)
    )
    lines.append("  实际动作：" if not result.error else "  实际动作（到出错为止）：")
    lines.extend(f"    {obs.describe()}" for obs in result.observed)
    if not result.observed:
        lines.append("    （无）")
    return "\n".join(lines)


def junit_xml(report: Report) -> str:
    suite = ElementTree.Element(
        "testsuite",
        name="rulesvc-cases",
        tests=str(len(report.results)),
        failures=str(sum(1 for r in report.results if r.failures)),
        errors=str(sum(1 for r in report.results if r.error)),
    )
    for result in report.results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=result.case.file,
            name=result.case.name,
            time=f"{result.seconds:.4f}",
        )
        if result.error:
            ElementTree.SubElement(case, "error", message=result.error).text = format_failure(result)
        elif result.failures:
            ElementTree.SubElement(case, "failure", message=result.failures[0]).text = format_failure(result)
    properties = ElementTree.SubElement(suite, "properties")
    ElementTree.SubElement(properties, "property", name="coverage", value=f"{report.coverage:.4f}")
    for ref in report.uncovered:
        ElementTree.SubElement(properties, "property", name="uncovered", value=ref)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)
