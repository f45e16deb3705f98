"""Running the test gate for a draft: every case of every ruleset, with the draft (and its own case file)
in place of its ruleset, against the other rulesets' versions in force now and against each combination
their scheduled versions bring; then the gaps and warnings its case file leaves (`gaps`)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rulesvc.cases.model import load_case_text
from rulesvc.lang.model import Ruleset
from rulesvc.lifecycle.errors import InvalidDraftError
from rulesvc.lifecycle.gaps import findings, removed_cases
from rulesvc.lifecycle.gate import GateRun, case_label, corpus, load_corpus, run_gate, scenarios
from rulesvc.lifecycle.ports import VersionRecord
from rulesvc.lifecycle.timeline import BookFactory, latest


def draft_runs(
    factory: BookFactory,
    shipped_cases: Mapping[str, str],
    name: str,
    ruleset: Ruleset,
    cases: Mapping[str, str],
    versions: Sequence[VersionRecord],
    now: datetime,
) -> tuple[list[GateRun], dict[str, str], str | None]:
    """The draft's runs (one per scenario, the versions in force now first), its own case file
    (`{name: text}`, or nothing) and the case file of the version it is based on (or None)."""
    head = latest(versions).get(name)
    base = corpus(shipped_cases, [head] if head else []).get(name)
    own = {name: cases[name]} if name in cases else {name: base} if base is not None else {}
    runs = []
    for scenario in scenarios(versions, now, name):
        others = {n: factory.stored(r) for n, r in scenario.chosen.items()}
        files = {**corpus(shipped_cases, scenario.chosen.values()), **own}
        loaded, errors = load_corpus(files, factory.kinds)
        if errors:
            raise InvalidDraftError(errors, "合规样例文件有错误")
        runs.append(GateRun(scenario, factory.book({**others, name: ruleset}), loaded, files))
    return runs, own, base


def gate_draft(
    factory: BookFactory,
    shipped_cases: Mapping[str, str],
    name: str,
    ruleset: Ruleset,
    cases: Mapping[str, str],
    versions: Sequence[VersionRecord],
    now: datetime,
    lock: threading.Lock | None,
) -> dict[str, Any]:
    """The draft's test report (JSON) with its `gaps` and `warnings`; `cases` is the draft's own case file
    (`{name: text}`) or nothing (then the one of the version it is based on)."""
    runs, own, base = draft_runs(factory, shipped_cases, name, ruleset, cases, versions, now)
    tests, report = run_gate(runs, lock)
    label = case_label(name)
    old = {c.name: c for c in load_case_text(label, base)[0]} if base else {}
    new = {c.name: c for c in load_case_text(label, own[name])[0]} if own else {}
    gaps, warnings = findings(
        name, removed_cases(old, new), runs[0], report, ruleset, tests["uncovered"], lock
    )
    return {**tests, "gaps": gaps, "warnings": warnings}
