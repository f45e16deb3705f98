"""Importing rulesets: the rules folder as version 1 on first start, and a folder brought back in (from git,
another environment) as one draft per changed ruleset, each going through the gate and approval."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rulesvc.lifecycle.artifacts import ArtifactType
from rulesvc.lifecycle.errors import ForbiddenError, ForeignCaseFileError, InvalidDraftError
from rulesvc.lifecycle.gate import check_case_files, corpus, corpus_hash
from rulesvc.lifecycle.ports import (
    AuditNote,
    Change,
    DraftRecord,
    RulesetStore,
    StoreView,
    VersionRecord,
)
from rulesvc.lifecycle.queries import RulesetQueries
from rulesvc.lifecycle.registry import BookRegistry
from rulesvc.lifecycle.steps import check_name
from rulesvc.lifecycle.timeline import EPOCH, BookFactory
from rulesvc.sla.clock import Clock

SYSTEM = "system"
"""The author of the versions imported at first start."""


@dataclass(frozen=True)
class ImportResult:
    imported: list[VersionRecord]
    drafts: list[DraftRecord]
    unchanged: list[str]


class Importing:
    """The import use cases of `LifecycleService` (which provides these attributes and `create_draft`)."""

    store: RulesetStore
    registry: BookRegistry
    factory: BookFactory
    clock: Clock
    queries: RulesetQueries
    shipped_cases: dict[str, str]
    artifact: ArtifactType
    _announce: Callable[[], object]

    def _note(self, step: str, name: str, actor: str, **fields: Any) -> AuditNote:
        raise NotImplementedError

    def create_draft(
        self, actor: str, name: str, content: str, reason: str = "", cases: Mapping[str, str] | None = None
    ) -> DraftRecord:
        raise NotImplementedError

    def bootstrap(self, rulesets: Mapping[str, str], cases: Mapping[str, str]) -> list[VersionRecord]:
        """First start: the rules folder becomes version 1 of each ruleset (effective since EPOCH), unless
        the database already holds versions (then it is the source of truth and nothing happens)."""
        if not self.store.has_versions():
            self._parse_all(rulesets)
            now = self.clock.now()
            imported = self._import_versions(rulesets, cases, SYSTEM, now)
        else:
            imported = []
        self.registry.refresh()
        return imported

    def import_rulesets(
        self,
        actor: str,
        rulesets: Mapping[str, str],
        cases: Mapping[str, str],
        *,
        may_bootstrap: bool,
        base_versions: Mapping[str, int] | None = None,
    ) -> ImportResult:
        """Into an empty database: version 1 of each (needs `may_bootstrap`). Otherwise every ruleset that
        differs from its latest version becomes a draft by `actor`, to go through approval; a folder
        exported from older versions than the latest (`base_versions`) is refused whole."""
        for name in rulesets:
            check_name(name)
        for name, version in sorted((base_versions or {}).items()):
            if name in rulesets or name in cases:
                self.queries.check_base(name, version)
        self._parse_all(rulesets)
        problems = check_case_files(cases, self.factory.kinds)
        if problems:
            raise InvalidDraftError(problems, "合规样例文件有错误")
        if not self.store.has_versions():
            if not may_bootstrap:
                raise ForbiddenError("数据库中还没有任何规则集版本：首次导入需要 admin 角色")
            imported = self._import_versions(rulesets, cases, actor, self.clock.now())
            if imported:
                self._announce()
                return ImportResult(imported, [], [])
        current = self.store.latest_versions()
        files = corpus(self.shipped_cases, current.values())
        foreign = sorted(f for f in cases if f not in rulesets and f not in current)
        if foreign:
            raise ForeignCaseFileError(
                f"样例文件 {', '.join(f'cases/{f}.yaml' for f in foreign)} 不属于任何规则集：合规样例随所属规则集版本化",
                {"files": foreign},
            )
        drafts: list[DraftRecord] = []
        unchanged: list[str] = []
        for name in sorted(set(rulesets) | set(cases)):
            case_changes = {name: cases[name]} if name in cases and files.get(name) != cases[name] else {}
            head = current.get(name)
            content = rulesets.get(name, head.content if head else "")
            if head is not None and head.content == content and not case_changes:
                unchanged.append(name)
                continue
            drafts.append(self.create_draft(actor, name, content, "导入", case_changes))
        return ImportResult([], drafts, unchanged)

    def _parse_all(self, rulesets: Mapping[str, str]) -> dict[str, str]:
        """name → content hash of every file, or InvalidDraftError with every positioned error."""
        hashes: dict[str, str] = {}
        errors = []
        for name, text in sorted(rulesets.items()):
            found_hash, found = self.artifact.check(name, text)
            errors.extend(found)
            if found_hash is not None:
                hashes[name] = found_hash
        if errors:
            raise InvalidDraftError(errors, f"{self.artifact.label}有错误")
        return hashes

    def _import_versions(
        self, rulesets: Mapping[str, str], cases: Mapping[str, str], actor: str, now: datetime
    ) -> list[VersionRecord]:
        hashes = self._parse_all(rulesets)
        records = [
            VersionRecord(
                name=name,
                version=1,
                content=text,
                content_hash=hashes[name],
                cases={name: cases[name]} if name in cases else {},
                source="import",
                author=actor,
                reason="首次导入",
                created_at=now,
                published_at=now,
                published_by=actor,
                effective_at=EPOCH,
            )
            for name, text in sorted(rulesets.items())
        ]

        def decide(view: StoreView) -> Change:
            if view.has_versions():
                return Change()  # another replica imported first
            notes = [
                self._note(
                    "imported",
                    r.name,
                    actor,
                    version=1,
                    content_sha256=r.content_hash,
                    cases_sha256=corpus_hash(r.cases),
                    effective_at=r.effective_at.isoformat(),
                )
                for r in records
            ]
            return Change(versions=records, audit=notes)

        return list(self.store.write(now, decide).change.versions)
