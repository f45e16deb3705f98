"""Use cases of the ruleset lifecycle: draft, test, submit, withdraw, approve/reject, publish, rollback and
backtest (import lives in `importing`, reads in `queries`).

State machine of a draft (every step is a chain entry `ruleset:<name>` with who, what, when, why and the
content hash):

    draft ──submit (all cases pass; gaps explained)──▶ submitted ──approve (not the author; gaps accepted)──▶
      ▲ cases re-uploaded, replayed          │   └──reject (not the author)──▶ rejected
      └───────────withdraw (the author)──────┘        approved ──publish──▶ published

What the approver sees — tests, coverage, gaps, replay — is frozen at submit (`draft.evidence_frozen`).

A draft is based on the latest version when it is made; once another version is published it is stale and
can be neither submitted, approved nor published (it would silently undo that version). Publishing gives
the next version number and an effective time (now or later; never earlier, decisions already made must
stay explainable). Rollback makes a draft of an earlier version's content and cases and submits it: it is
then approved and published like any other.

The same use cases serve every artifact type (`ArtifactType`: rulesets, calendars): the type checks and
tests a file and diffs two sides; case files, backtests and rollback are the ruleset type's (`has_cases`).
`on_published` is what a publication triggers beyond the reload (calendars: re-planning open timers).

Depends on ports only: a `RulesetStore`, the `BookRegistry`, a `Clock`, a `MaskPolicy`, an announce hook.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from rulesvc.apikeys import same_actor
from rulesvc.fieldclasses import ClassMasking
from rulesvc.lifecycle.artifacts import ArtifactType, RulesetArtifact
from rulesvc.lifecycle.case_trial import CaseTrial, try_cases
from rulesvc.lifecycle.errors import (
    BadRequestError,
    CasesFailedError,
    FourEyesError,
    GapsNotAcceptedError,
    GapsUnexplainedError,
    InvalidDraftError,
    NoChangeError,
    StateError,
)
from rulesvc.lifecycle.evidence import draft_evidence, version_evidence
from rulesvc.lifecycle.gate import (
    check_case_files,
    corpus,
    corpus_hash,
    own_cases,
    summary,
)
from rulesvc.lifecycle.importing import Importing
from rulesvc.lifecycle.ports import (
    APPROVED,
    DRAFT,
    PUBLISHED,
    REJECTED,
    SUBMITTED,
    AuditNote,
    Change,
    DraftRecord,
    RulesetStore,
    StoreView,
    VersionRecord,
)
from rulesvc.lifecycle.queries import RulesetQueries
from rulesvc.lifecycle.registry import BookRegistry
from rulesvc.lifecycle.replay import backtest
from rulesvc.lifecycle.steps import (
    chain_note,
    check_name,
    evidence_hash,
    replay_summary,
    require_author,
    require_base,
    require_draft,
    require_editable_evidence,
    require_own_file,
    require_status,
)
from rulesvc.lifecycle.timeline import latest
from rulesvc.masking import MaskPolicy
from rulesvc.model import Decision, Event
from rulesvc.rulebook import RuleBook
from rulesvc.sla.clock import Clock
from rulesvc.testreport.document import Evidence

MAX_REPLAY = 50_000


REPLAY_ROLES = ("editor", "approver", "admin")
"""Roles that may replay a draft (`rulesets:replay`): its examples show only what all of them may read."""


@dataclass(frozen=True)
class Publication:
    version: VersionRecord
    supersedes: list[int]
    """Pending (future) versions that will now never take effect."""
    effects: Mapping[str, Any] = field(default_factory=dict)
    """What the publication triggered (calendars: the re-planned timers), part of the answer."""


class LifecycleService(Importing):
    def __init__(
        self,
        store: RulesetStore,
        registry: BookRegistry,
        clock: Clock,
        masking: MaskPolicy,
        *,
        shipped_cases: Mapping[str, str],
        announce: Callable[[], None] | None = None,
        engine_lock: threading.Lock | None = None,
        clock_skew: timedelta = timedelta(seconds=5),
        artifact: ArtifactType | None = None,
        on_published: Callable[[Publication, str], Mapping[str, Any]] | None = None,
    ) -> None:
        self.artifact: ArtifactType = artifact or RulesetArtifact(
            registry.factory, shipped_cases, clock.now, engine_lock
        )
        self.kind = self.artifact.kind
        self.on_published = on_published
        """What a publication triggers beyond the reload (set by the composition root: calendars re-plan
        their open timers), given the publication and who published; its answer is part of the reply."""
        self.store = store
        self.registry = registry
        self.factory = registry.factory
        self.clock = clock
        self.masking = masking
        self.classes: ClassMasking | None = None
        """Field classes (set by the composition root): replay examples leave masked by the classes every
        role that may replay holds (`rulesvc.fieldclasses`)."""
        self.shipped_cases = dict(shipped_cases)
        self.queries = RulesetQueries(store, registry, clock, shipped_cases, self.artifact)
        self._announce = announce or registry.refresh
        self._engine_lock = engine_lock
        self._clock_skew = clock_skew

    # -- drafts -------------------------------------------------------------------------------------------

    def create_draft(
        self,
        actor: str,
        name: str,
        content: str,
        reason: str = "",
        cases: Mapping[str, str] | None = None,
        *,
        source: str = "draft",
        rollback_of: int | None = None,
        base_version: int | None = None,
        base_sha256: str | None = None,
    ) -> DraftRecord:
        """Check the ruleset (InvalidDraftError with every positioned error), run every case, store it.

        `base_version` (and `base_sha256`): the version the file was exported from; refused (StaleBaseError,
        with the difference) unless it is the latest version of the ruleset."""
        check_name(name, f"{self.artifact.label}名称")
        if base_version is not None:
            self.queries.check_base(name, base_version, base_sha256)
        checked_hash, errors = self.artifact.check(name, content)
        if checked_hash is None:
            raise InvalidDraftError(errors, f"{self.artifact.label}有错误")
        cases = dict(cases or {})
        if cases and not self.artifact.has_cases:
            raise BadRequestError(f"{self.artifact.label}草稿不带合规样例文件", {"cases": sorted(cases)})
        for file in cases:
            check_name(file, "样例文件名")
            require_own_file(name, file)
        problems = check_case_files(cases, self.factory.kinds)
        if problems:
            raise InvalidDraftError(problems, "合规样例文件有错误")
        versions = self.store.all_versions()
        head = latest(versions).get(name)
        files = corpus(self.shipped_cases, latest(versions).values())
        if (
            head is not None
            and head.content_hash == checked_hash
            and all(files.get(f) == t for f, t in cases.items())
        ):
            raise NoChangeError(
                f"草稿与 {name} 的最新版本 v{head.version} 完全相同", {"version": head.version}
            )
        tests = self._test(name, content, cases, versions)
        now = self.clock.now()
        draft = DraftRecord(
            draft_id=str(uuid.uuid4()),
            name=name,
            base_version=head.version if head else None,
            content=content,
            content_hash=checked_hash,
            cases=cases,
            status=DRAFT,
            source=source,
            author=actor,
            reason=reason,
            created_at=now,
            updated_at=now,
            tests=tests,
            rollback_of=rollback_of,
        )

        def decide(view: StoreView) -> Change:
            require_base(view, draft)
            fields: dict[str, Any] = {
                "draft_id": draft.draft_id,
                "base_version": draft.base_version,
                "reason": reason,
                "content_sha256": draft.content_hash,
                "tests": summary(tests),
            }
            if rollback_of is not None:
                fields["rollback_to"] = rollback_of
            step = "rollback_requested" if source == "rollback" else "draft_created"
            return Change(drafts=[draft], audit=[self._note(step, name, actor, **fields)])

        self.store.write(now, decide)
        return draft

    def upload_cases(self, actor: str, name: str, draft_id: str, file: str | None, text: str) -> DraftRecord:
        """Replace one case file for this draft (default: the ruleset's own, `cases/<name>.yaml`) and re-test."""
        file = file or name
        check_name(file, "样例文件名")
        draft = self.queries.draft(name, draft_id)
        require_own_file(name, file)
        require_author(draft, actor, "修改")
        require_status(draft, DRAFT, "上传样例")
        cases = {**draft.cases, file: text}
        problems = check_case_files({file: text}, self.factory.kinds)
        if problems:
            raise InvalidDraftError(problems, "合规样例文件有错误")
        tests = self._test(name, draft.content, cases)
        now = self.clock.now()

        def decide(view: StoreView) -> Change:
            current = require_draft(view, draft_id)
            require_status(current, DRAFT, "上传样例")
            updated = replace(current, cases=cases, tests=tests, updated_at=now)
            note = self._note(
                "cases_uploaded",
                name,
                actor,
                draft_id=draft_id,
                file=file,
                file_sha256=corpus_hash({file: text}),
                tests=summary(tests),
            )
            return Change(drafts=[updated], audit=[note])

        return self._one_draft(now, decide)

    def update_content(
        self, actor: str, name: str, draft_id: str, content: str, *, based_on: str, step: str, **fields: Any
    ) -> DraftRecord:
        """Replace the draft's ruleset file (the author, while it is a draft), check and re-test it; its replay
        is dropped (it was of the old content). `based_on` is the content the change was made from: a draft
        changed meanwhile is refused (StateError), not overwritten."""
        draft = self.queries.draft(name, draft_id)
        require_author(draft, actor, "修改")
        require_status(draft, DRAFT, "修改")
        checked_hash, errors = self.artifact.check(name, content)
        if checked_hash is None:
            raise InvalidDraftError(errors, f"{self.artifact.label}有错误")
        tests = self._test(name, content, draft.cases)
        now = self.clock.now()

        def decide(view: StoreView) -> Change:
            current = require_draft(view, draft_id)
            require_status(current, DRAFT, "修改")
            if current.content != based_on:
                raise StateError("草稿刚被修改过，请重新下载后再改", {"draft_id": draft_id})
            updated = replace(
                current, content=content, content_hash=checked_hash, tests=tests, replay=None, updated_at=now
            )
            note = self._note(
                step,
                name,
                actor,
                draft_id=draft_id,
                content_sha256=checked_hash,
                tests=summary(tests),
                **fields,
            )
            return Change(drafts=[updated], audit=[note])

        return self._one_draft(now, decide)

    def submit(self, actor: str, name: str, draft_id: str, gaps_reason: str = "") -> DraftRecord:
        """Re-run every case; refuse (CasesFailedError, the report in `details`) unless all pass, and
        (GapsUnexplainedError) when the draft leaves gaps in the gate without a reason. The test report,
        its gaps and reason, and the replay report are the evidence frozen for the approver."""
        draft = self.queries.draft(name, draft_id)
        require_author(draft, actor, "提交")
        require_status(draft, DRAFT, "提交")
        tests = self._test(name, draft.content, draft.cases)
        now = self.clock.now()
        passed = tests["failed"] == 0
        gaps_reason = " ".join(gaps_reason.split())
        if passed and tests["gaps"] and not gaps_reason:
            raise GapsUnexplainedError(
                f"草稿有 {len(tests['gaps'])} 处测试缺口（覆盖率 {tests['coverage']:.0%}），提交时必须写明理由"
                "（gaps_reason），并由审批人明确接受：" + "；".join(g["message"] for g in tests["gaps"][:3]),
                {"gaps": tests["gaps"], "coverage": tests["coverage"]},
            )
        if tests["gaps"]:
            tests = {**tests, "gaps_reason": gaps_reason}

        def decide(view: StoreView) -> Change:
            current = require_draft(view, draft_id)
            require_status(current, DRAFT, "提交")
            require_base(view, current)
            if not passed:
                return Change(drafts=[replace(current, tests=tests, updated_at=now)])
            updated = replace(current, status=SUBMITTED, tests=tests, submitted_at=now, updated_at=now)
            note = self._note(
                "submitted",
                name,
                actor,
                draft_id=draft_id,
                content_sha256=current.content_hash,
                tests=summary(tests),
                replay=replay_summary(current.replay),
                evidence_sha256=evidence_hash(updated),
                **({"gaps": len(tests["gaps"]), "gaps_reason": gaps_reason} if tests["gaps"] else {}),
            )
            return Change(drafts=[updated], audit=[note])

        updated = self._one_draft(now, decide)
        if not passed:
            raise CasesFailedError(tests)
        return updated

    def approve(
        self, actor: str, name: str, draft_id: str, comment: str = "", accept_gaps: bool = False
    ) -> DraftRecord:
        """Approve what was submitted; a draft with gaps in the gate needs them accepted (`accept_gaps`)."""
        return self._review(actor, name, draft_id, comment, APPROVED, accept_gaps)

    def withdraw(self, actor: str, name: str, draft_id: str) -> DraftRecord:
        """The author takes a submitted draft back to editing (e.g. to replay again); its evidence is then
        produced anew and frozen again when it is submitted again."""
        draft = self.queries.draft(name, draft_id)
        require_author(draft, actor, "撤回")
        now = self.clock.now()

        def decide(view: StoreView) -> Change:
            current = require_draft(view, draft_id)
            require_status(current, SUBMITTED, "撤回")
            updated = replace(current, status=DRAFT, submitted_at=None, updated_at=now)
            return Change(drafts=[updated], audit=[self._note("withdrawn", name, actor, draft_id=draft_id)])

        return self._one_draft(now, decide)

    def reject(self, actor: str, name: str, draft_id: str, comment: str) -> DraftRecord:
        if not comment.strip():
            raise BadRequestError("驳回时必须写明理由（comment）")
        return self._review(actor, name, draft_id, comment, REJECTED)

    def _review(
        self, actor: str, name: str, draft_id: str, comment: str, outcome: str, accept_gaps: bool = False
    ) -> DraftRecord:
        self.queries.draft(name, draft_id)
        now = self.clock.now()
        verb = "批准" if outcome == APPROVED else "驳回"

        def decide(view: StoreView) -> Change:
            current = require_draft(view, draft_id)
            if same_actor(current.author, actor):
                raise FourEyesError(
                    f"四眼原则：草稿作者本人不能{verb}自己的草稿（无论使用哪个密钥或会话、持有什么角色）",
                    {"draft_id": draft_id, "author": current.author},
                )
            require_status(current, SUBMITTED, verb)
            gaps = list(current.tests.get("gaps", []))
            if outcome == APPROVED:
                require_base(view, current)
                if gaps and not accept_gaps:
                    raise GapsNotAcceptedError(
                        f"草稿有 {len(gaps)} 处测试缺口，作者的理由：{current.tests.get('gaps_reason') or '-'}；"
                        "批准前须明确接受（accept_gaps: true）",
                        {"gaps": gaps, "gaps_reason": current.tests.get("gaps_reason", "")},
                    )
            updated = replace(
                current,
                status=outcome,
                reviewer=actor,
                review_comment=comment,
                reviewed_at=now,
                updated_at=now,
            )
            note = self._note(
                outcome,
                name,
                actor,
                draft_id=draft_id,
                author=current.author,
                comment=comment,
                content_sha256=current.content_hash,
                tests=summary(current.tests),
                replay=replay_summary(current.replay),
                evidence_sha256=evidence_hash(current),
                **({"accepted_gaps": len(gaps)} if gaps and outcome == APPROVED else {}),
            )
            return Change(drafts=[updated], audit=[note])

        return self._one_draft(now, decide)

    def publish(
        self, actor: str, name: str, draft_id: str, effective_at: datetime | None = None
    ) -> Publication:
        """The approved draft becomes the next version, in force from `effective_at` (default now)."""
        self.queries.draft(name, draft_id)
        now = self.clock.now()
        effective = effective_at or now
        if effective.tzinfo is None:
            raise BadRequestError("effective_at 必须带时区偏移，例如 2026-12-01T00:00:00+08:00")
        if effective < now - self._clock_skew:
            raise BadRequestError(
                "effective_at 不能早于当前时间：已经做出的决策必须仍能用当时生效的版本解释",
                {"effective_at": effective.isoformat(), "now": now.isoformat()},
            )
        effective = max(effective, now)
        existing = self.store.all_versions()
        files = corpus(self.shipped_cases, latest(existing).values())
        pending: list[int] = []

        def decide(view: StoreView) -> Change:
            current = require_draft(view, draft_id)
            require_status(current, APPROVED, "发布")
            head = require_base(view, current)
            number = (head.version if head else 0) + 1
            own = {name: files[name]} if name in files else {}
            record = VersionRecord(
                name=name,
                version=number,
                content=current.content,
                content_hash=current.content_hash,
                cases={**own, **{f: t for f, t in current.cases.items() if f == name}},
                source=current.source,
                author=current.author,
                reason=current.reason,
                created_at=current.created_at,
                published_at=now,
                published_by=actor,
                effective_at=effective,
                draft_id=current.draft_id,
                rollback_of=current.rollback_of,
                approver=current.reviewer,
                approval_comment=current.review_comment,
                approved_at=current.reviewed_at,
            )
            updated = replace(
                current,
                status=PUBLISHED,
                published_version=number,
                published_at=now,
                published_by=actor,
                effective_at=effective,
                updated_at=now,
            )
            pending.extend(
                v.version
                for v in existing
                if v.name == name and v.effective_at > effective and v.version < number
            )
            note = self._note(
                "published",
                name,
                actor,
                draft_id=draft_id,
                version=number,
                effective_at=effective.isoformat(),
                author=current.author,
                approver=current.reviewer,
                reason=current.reason,
                content_sha256=current.content_hash,
                cases_sha256=corpus_hash(record.cases),
                rollback_to=current.rollback_of,
                supersedes=list(pending),
            )
            return Change(drafts=[updated], versions=[record], audit=[note])

        written = self.store.write(now, decide)
        self._announce()
        publication = Publication(written.change.versions[0], pending)
        if self.on_published is not None:
            publication = replace(publication, effects=dict(self.on_published(publication, actor)))
        return publication

    def record_step(self, actor: str, name: str, step: str, **fields: Any) -> None:
        """Append a lifecycle step of `name` that changes no draft or version (e.g. a re-plan) to the chain."""
        self.store.write(
            self.clock.now(), lambda _view: Change(audit=[self._note(step, name, actor, **fields)])
        )

    def rollback(self, actor: str, name: str, to_version: int, reason: str = "") -> DraftRecord:
        """A draft with version `to_version`'s content and its own case file, submitted at once when its
        cases pass and it leaves no gaps in the gate (else it stays a draft for the author to see to)."""
        target = self.queries.version(name, to_version)
        draft = self.create_draft(
            actor,
            name,
            target.content,
            reason or f"回滚到版本 {to_version}",
            own_cases(target),
            source="rollback",
            rollback_of=to_version,
        )
        if draft.tests.get("failed", 0) or draft.tests.get("gaps"):
            return draft
        return self.submit(actor, name, draft.draft_id)

    def _example_masking(self) -> MaskPolicy:
        if self.classes is None:
            return self.masking
        held = [self.classes.grants.get(role, frozenset()) for role in REPLAY_ROLES]
        return self.classes.for_classes(frozenset.intersection(*held), self.factory.kinds) or self.masking

    def replay(
        self, actor: str, name: str, draft_id: str, start: datetime, end: datetime, limit: int = 10_000
    ) -> DraftRecord:
        """Backtest the draft on the events that occurred in [start, end); the report is kept on the draft
        as evidence for the approver (frozen once the draft is submitted)."""
        if end <= start:
            raise BadRequestError("回放区间不合法：to 必须晚于 from")
        if not 1 <= limit <= MAX_REPLAY:
            raise BadRequestError(f"limit 必须在 1 到 {MAX_REPLAY} 之间")
        draft = self.queries.draft(name, draft_id)
        require_editable_evidence(draft)
        ruleset = self.factory.ruleset(name, draft.content)
        timeline = self.registry.timeline
        based_on = self.queries.version(name, draft.base_version) if draft.base_version else None

        def candidate(instant: datetime) -> RuleBook:
            return self.queries.with_draft(timeline.at(instant), ruleset)

        def base(instant: datetime) -> RuleBook:
            book = timeline.at(instant)
            return self.queries.with_draft(book, self.factory.stored(based_on)) if based_on else book

        report = backtest(
            self.store.logged_decisions(start, end, limit + 1),
            kind=ruleset.kind,
            then=timeline.at,
            base=base,
            candidate=candidate,
            evaluate=self._evaluate,
            masking=self._example_masking(),
            start=start,
            end=end,
            limit=limit,
        )
        now = self.clock.now()

        def decide(view: StoreView) -> Change:
            current = require_draft(view, draft_id)
            require_editable_evidence(current)
            note = self._note("replayed", name, actor, draft_id=draft_id, **replay_summary(report))
            return Change(drafts=[replace(current, replay=report, updated_at=now)], audit=[note])

        return self._one_draft(now, decide)

    # -- internals ----------------------------------------------------------------------------------------

    def evidence(self, name: str, *, draft_id: str | None = None, version: int | None = None) -> Evidence:
        """The evidence file content of a draft or of a published version (`lifecycle.evidence`)."""
        if draft_id is not None:
            return draft_evidence(self.queries, self._engine_lock, name, draft_id)
        return version_evidence(self.queries, self._engine_lock, name, version or 0)

    def try_cases(self, name: str, content: str, case_text: str, only: int | None = None) -> CaseTrial:
        """Run one case (`only`, 0-based) or every case of `case_text` on `content` as ruleset `name`
        among the versions in force now; nothing is stored."""
        return try_cases(self.queries, name, content, case_text, self._engine_lock, only)

    def _test(
        self,
        name: str,
        content: str,
        cases: Mapping[str, str],
        versions: list[VersionRecord] | None = None,
    ) -> dict[str, Any]:
        versions = versions if versions is not None else self.store.all_versions()
        return self.artifact.test(name, content, cases, versions)

    def _note(self, step: str, name: str, actor: str, **fields: Any) -> AuditNote:
        return chain_note(step, name, actor, kind=self.kind, **fields)

    def _evaluate(self, book: RuleBook, event: Event) -> Decision:
        if self._engine_lock is None:
            return book.evaluate(event)
        with self._engine_lock:
            return book.evaluate(event)

    def _one_draft(self, now: datetime, decide: Callable[[StoreView], Change]) -> DraftRecord:
        return self.store.write(now, decide).change.drafts[0]
