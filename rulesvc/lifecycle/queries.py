"""Reading the lifecycle: drafts, versions, what is in force when, diffs, history, export, and the books
simulation runs on (as of a time, or with a draft in place)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rulesvc.audit.chain import ChainEntry, Problem
from rulesvc.lang.model import Ruleset
from rulesvc.lifecycle.artifacts import ArtifactType, DiffSide, RulesetArtifact
from rulesvc.lifecycle.errors import BadRequestError, NotFoundError, StaleBaseError
from rulesvc.lifecycle.gate import corpus, corpus_hash, own_cases
from rulesvc.lifecycle.ports import (
    STATUSES,
    DraftRecord,
    RulesetStore,
    VersionRecord,
    subject_of,
)
from rulesvc.lifecycle.registry import BookRegistry
from rulesvc.lifecycle.timeline import (
    SCHEDULED,
    VersionState,
    content_hash,
    in_force,
    latest,
    version_states,
)
from rulesvc.rulebook import RuleBook
from rulesvc.sla.clock import Clock

NAME = re.compile(r"^[^\s/\\:*?\"<>|\x00-\x1f]{1,100}$")
"""What a ruleset or case file may be called (it becomes a file name on export)."""
_DRAFT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class RulesetQueries:
    """Reads of one artifact type's lifecycle (rulesets by default; calendars with a `CalendarArtifact`)."""

    def __init__(
        self,
        store: RulesetStore,
        registry: BookRegistry,
        clock: Clock,
        shipped_cases: Mapping[str, str],
        artifact: ArtifactType | None = None,
    ) -> None:
        self.store = store
        self.artifact: ArtifactType = artifact or RulesetArtifact(registry.factory, shipped_cases, clock.now)
        self.label = self.artifact.label
        self.registry = registry
        self.factory = registry.factory
        self.clock = clock
        self.shipped_cases = dict(shipped_cases)

    # -- reads --------------------------------------------------------------------------------------------

    def draft(self, name: str, draft_id: str) -> DraftRecord:
        draft = self.store.get_draft(draft_id) if _DRAFT_ID.match(draft_id) else None
        if draft is None or draft.name != name:
            raise NotFoundError(f"{self.label} {name} 没有草稿 {draft_id}", {"draft_id": draft_id})
        return draft

    def drafts(self, name: str, status: str | None = None) -> list[DraftRecord]:
        if status is not None and status not in STATUSES:
            raise BadRequestError(f"status 必须是 {', '.join(STATUSES)} 之一")
        return self.store.drafts(name, status) if NAME.match(name) else []

    def version(self, name: str, number: int) -> VersionRecord:
        record = self.store.get_version(name, number) if NAME.match(name) else None
        if record is None:
            raise NotFoundError(f"{self.label} {name} 没有版本 {number}", {"version": number})
        return record

    def versions(self, name: str) -> list[VersionRecord]:
        records = self.store.versions(name) if NAME.match(name) else []
        if not records:
            raise NotFoundError(f"{self.label} {name} 不存在", {self.artifact.kind: name})
        return records

    def states(self, name: str, at: datetime | None = None) -> dict[int, VersionState]:
        """version → its state (in force / scheduled / superseded / rolled back) now or at `at`."""
        states = version_states(self.store.versions(name) if NAME.match(name) else [], at or self.clock.now())
        return {number: state for (_, number), state in states.items()}

    def overview(self, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """Each ruleset: the version in force at `as_of` (default now), the versions scheduled after it, and
        the versions that were scheduled but will now never take effect."""
        instant = as_of or self.clock.now()
        versions = self.store.all_versions()
        force = in_force(versions, instant)
        states = version_states(versions, instant)
        result = []
        for name in sorted({v.name for v in versions}):
            current = force.get(name)
            number = current.version if current else 0
            later = [
                v for v in versions if v.name == name and v.version > number and v.effective_at > instant
            ]
            pending = [v for v in later if states[(name, v.version)].state == SCHEDULED]
            superseded = [(v, states[(name, v.version)]) for v in later if v not in pending]
            result.append({"name": name, "in_force": current, "pending": pending, "superseded": superseded})
        return result

    def diff(self, name: str, from_ref: str | None, to_ref: str | None) -> dict[str, Any]:
        """Structured and text diff between two versions or drafts (`3`, `v3` or a draft id).

        Defaults: `to` = the latest version; `from` = the draft's base version, or the version before `to`.
        """
        new_side = self._side(name, to_ref) if to_ref else self._latest_side(name)
        if from_ref:
            old_side: DiffSide | None = self._side(name, from_ref)
        else:
            number = new_side.base if new_side.draft else (new_side.version or 1) - 1
            old_side = self._side(name, str(number)) if number else None
        result = self.artifact.diff(name, old_side, new_side)
        result["from"] = old_side.label if old_side else "（无）"
        result["to"] = new_side.label
        return result

    def draft_diff(self, draft: DraftRecord) -> dict[str, Any]:
        return self.diff(draft.name, None, draft.draft_id)

    def history(self, name: str) -> list[dict[str, Any]]:
        entries = self.store.history(subject_of(self.artifact.kind, name)) if NAME.match(name) else []
        if not entries:
            raise NotFoundError(f"{self.label} {name} 没有任何记录", {self.artifact.kind: name})
        return [
            {"seq": e.seq, "at": e.at, "hash": e.hash, "prev_hash": e.prev_hash, **e.payload} for e in entries
        ]

    def verify(self) -> dict[str, Any]:
        return verify_versions(self.store)

    def export(self, as_of: datetime | None = None) -> dict[str, Any]:
        """The versions in force at `as_of` (default now: the versions in force; a later time: the scheduled
        versions in force then) with their own case files, for writing back to a rules folder. Each ruleset
        names the version the files are based on, its state, the latest version and the versions scheduled
        after it: a folder pushed back must be based on the latest version (`check_base`)."""
        now = self.clock.now()
        instant = as_of or now
        versions = self.store.all_versions()
        chosen = in_force(versions, instant)
        states = version_states(versions, now)
        heads = latest(versions)
        rulesets = {}
        for name, record in sorted(chosen.items()):
            scheduled = [
                v
                for v in versions
                if v.name == name
                and v.version > record.version
                and states[(name, v.version)].state == SCHEDULED
            ]
            rulesets[name] = {
                "version": record.version,
                "content": record.content,
                **states[(name, record.version)].to_json(),
                "effective_at": record.effective_at.isoformat(),
                "content_sha256": record.content_hash,
                "cases_sha256": corpus_hash(own_cases(record)),
                "latest_version": heads[name].version,
                "scheduled": [
                    {"version": v.version, "effective_at": v.effective_at.isoformat(), "state": SCHEDULED}
                    for v in scheduled
                ],
            }
        return {
            "as_of": instant.isoformat(),
            "based_on": {name: entry["version"] for name, entry in rulesets.items()},
            "rulesets": rulesets,
            "cases": dict(sorted(corpus(self.shipped_cases, chosen.values()).items())),
        }

    def check_base(self, name: str, base_version: int, base_sha256: str | None = None) -> None:
        """Refuse (StaleBaseError, with the difference) a file based on another version than the latest of
        its ruleset, or on content that is not what that version holds."""
        base = self.version(name, base_version)
        head = self.versions(name)[-1]
        if base_sha256 is not None and base_sha256 != base.content_hash:
            raise StaleBaseError(
                f"文件声明基于 {name} v{base_version}，但内容与该版本不符（来自其他环境或已被改动）；请重新导出后修改",
                {"ruleset": name, "base_version": base_version, "reason": "different_content"},
            )
        if head.version == base_version:
            return
        state = self.states(name)[head.version]
        difference = self.diff(name, str(base_version), str(head.version))
        raise StaleBaseError(
            f"文件基于 {name} v{base_version}，但最新版本是 v{head.version}（{state.to_json()['state_label']}，"
            f"{head.effective_at.isoformat()} 起生效）；直接推送会撤销 v{head.version} 的修改。"
            f"请导出 v{head.version}（export --as-of {head.effective_at.isoformat()}）后再修改",
            {
                "ruleset": name,
                "base_version": base_version,
                "latest_version": head.version,
                "latest_state": state.state,
                "effective_at": head.effective_at.isoformat(),
                "difference": {k: difference[k] for k in ("summary", "added", "removed", "cases")},
            },
        )

    # -- books for simulation -----------------------------------------------------------------------------

    def simulation_book(self, as_of: datetime | None = None, draft_id: str | None = None) -> Any:
        """What `simulate` runs on: the versions in force at each event's time (default), at `as_of`, or —
        with a draft — those at `as_of` (default now) with the draft in place of its ruleset."""
        timeline = self.registry.timeline
        if draft_id is None:
            return timeline if as_of is None else timeline.at(as_of)
        draft = self.store.get_draft(draft_id)
        if draft is None:
            raise NotFoundError(f"草稿 {draft_id} 不存在", {"draft_id": draft_id})
        base = timeline.at(as_of or self.clock.now())
        return self.with_draft(base, self.factory.ruleset(draft.name, draft.content))

    def with_draft(self, book: RuleBook, ruleset: Ruleset) -> RuleBook:
        return self.factory.book({**book.folder.rulesets, ruleset.name: ruleset}, book.calendars)

    def _latest_side(self, name: str) -> DiffSide:
        head = self.versions(name)[-1]
        return DiffSide(f"v{head.version}", head.version, head.content, head.cases)

    def _side(self, name: str, ref: str) -> DiffSide:
        number = ref[1:] if ref[:1] in ("v", "V") else ref
        if number.isdigit() and len(number) <= 9:
            record = self.version(name, int(number))
            return DiffSide(f"v{record.version}", record.version, record.content, record.cases)
        draft = self.draft(name, ref)
        base_cases = self.version(name, draft.base_version).cases if draft.base_version else {}
        return DiffSide(
            f"草稿 {draft.draft_id[:8]}",
            None,
            draft.content,
            {**base_cases, **draft.cases},
            draft=True,
            base=draft.base_version,
        )


def publishing_entries(store: RulesetStore) -> dict[tuple[str, int], ChainEntry]:
    """(name, version) → the chain entry that imported or published it (what it vouches for)."""
    found: dict[tuple[str, int], ChainEntry] = {}
    for entry in store.lifecycle_entries():
        payload = entry.payload
        if isinstance(payload, dict) and payload.get("step") in ("imported", "published"):
            found[(str(payload.get(store.kind)), int(payload.get("version") or 0))] = entry
    return found


def verify_versions(store: RulesetStore) -> dict[str, Any]:
    """Check every stored version against the chain entry that published it: its content and case files
    must hash to what was approved. Catches a version edited, added or swapped in the database directly
    (the chain itself is checked by `GET /v1/audit/verify`)."""
    vouched = {key: {**entry.payload, "seq": entry.seq} for key, entry in publishing_entries(store).items()}
    problems = []
    versions = store.all_versions()
    for record in versions:
        where = {"ruleset": record.name, "version": record.version}
        approved = vouched.get((record.name, record.version))
        if approved is None:
            problems.append({**where, "reason": "unlogged_version", "message": "该版本不在审计链中"})
            continue
        if content_hash(record.content) != approved.get("content_sha256"):
            problems.append(
                {
                    **where,
                    "seq": approved["seq"],
                    "reason": "content_mismatch",
                    "message": "版本内容与审批时不符",
                }
            )
        elif corpus_hash(record.cases) != approved.get("cases_sha256"):
            problems.append(
                {
                    **where,
                    "seq": approved["seq"],
                    "reason": "cases_mismatch",
                    "message": "版本的合规样例与审批时不符",
                }
            )
    return {"ok": not problems, "checked": len(versions), "problems": problems}


def ruleset_problems(store: RulesetStore) -> list[Problem]:
    """`verify_versions` as problems of the one audit verify (table `ruleset_versions`)."""
    return [
        Problem(
            "ruleset_versions",
            f"{p['ruleset']}@{p['version']}",
            str(p["reason"]),
            str(p["message"]),
            p.get("seq"),
        )
        for p in verify_versions(store)["problems"]
    ]
