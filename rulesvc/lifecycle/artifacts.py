"""What the lifecycle needs to know about a type of versioned artifact (a ruleset, a calendar): one small
port, so drafts, the test gate, four-eyes review, effective-dated publishing, history and diff are one
mechanism for every type (`LifecycleService` and `RulesetQueries` are given an `ArtifactType`).

An artifact type says how to check a file (every positioned error), how to test a draft, how to diff two
sides, and what it is called. What publishing triggers is the service's `on_published` hook.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from rulesvc.errors import RulesetError
from rulesvc.lang.diff import diff_rulesets
from rulesvc.lifecycle.case_diff import case_changes
from rulesvc.lifecycle.draft_gate import gate_draft
from rulesvc.lifecycle.ports import KIND_RULESET, VersionRecord
from rulesvc.lifecycle.timeline import BookFactory


@dataclass(frozen=True)
class DiffSide:
    """One side of a diff: a version (`version`) or a draft (`draft`, based on `base`)."""

    label: str
    version: int | None
    content: str
    cases: Mapping[str, str]
    draft: bool = False
    base: int | None = None


class ArtifactType(Protocol):
    kind: str
    """`ruleset` | `calendar`: the store's artifact column, the chain entry kind and subject prefix."""
    label: str
    """What people call it: 规则集, 日历."""
    has_cases: bool
    """Whether drafts carry compliance case files."""

    def check(self, name: str, text: str) -> tuple[str | None, list[RulesetError]]:
        """(content hash, []) for a valid file named `name`, or (None, every positioned error)."""
        ...

    def test(
        self, name: str, text: str, cases: Mapping[str, str], versions: Sequence[VersionRecord]
    ) -> dict[str, Any]:
        """The draft's test report (`passed`, `failed`, `gaps`, `warnings`, ...) shown to the approver."""
        ...

    def diff(self, name: str, old: DiffSide | None, new: DiffSide) -> dict[str, Any]:
        """Structured changes (`summary`: one line per change, in Chinese) and the text diff."""
        ...


def text_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=old_label,
            tofile=new_label,
        )
    )


class RulesetArtifact:
    """Rulesets: compiled against the deployment's kinds and calendars, tested on every compliance case."""

    kind = KIND_RULESET
    label = "规则集"
    has_cases = True

    def __init__(
        self,
        factory: BookFactory,
        shipped_cases: Mapping[str, str],
        now: Callable[[], datetime],
        engine_lock: threading.Lock | None = None,
    ) -> None:
        self.factory = factory
        self.shipped_cases = dict(shipped_cases)
        self._now = now
        self._engine_lock = engine_lock

    def check(self, name: str, text: str) -> tuple[str | None, list[RulesetError]]:
        ruleset, errors = self.factory.parse(name, text)
        return (ruleset.content_hash if ruleset is not None else None), errors

    def test(
        self, name: str, text: str, cases: Mapping[str, str], versions: Sequence[VersionRecord]
    ) -> dict[str, Any]:
        return gate_draft(
            self.factory,
            self.shipped_cases,
            name,
            self.factory.ruleset(name, text),
            cases,
            versions,
            self._now(),
            self._engine_lock,
        )

    def diff(self, name: str, old: DiffSide | None, new: DiffSide) -> dict[str, Any]:
        old_ruleset = self.factory.ruleset(name, old.content, old.version or 0) if old else None
        new_ruleset = self.factory.ruleset(name, new.content, new.version or 0)
        old_label = old.label if old else "（无）"
        result = diff_rulesets(old_ruleset, new_ruleset, old_label, new.label).to_json()
        # only the ruleset's own case file: other rulesets' files are not part of its versions
        old_cases = {name: old.cases[name]} if old and name in old.cases else {}
        new_cases = {name: new.cases[name]} if name in new.cases else {}
        result["cases_text"] = "".join(
            text_diff(
                old_cases.get(file, ""),
                new_cases.get(file, ""),
                f"cases/{file}.yaml ({old_label})",
                f"cases/{file}.yaml ({new.label})",
            )
            for file in sorted(set(old_cases) | set(new_cases))
            if old_cases.get(file, "") != new_cases.get(file, "")
        )
        result["cases"] = case_changes(name, old_cases.get(name), new_cases.get(name))
        return result
