"""The checks and chain entries every lifecycle step shares: who may act, in which state, on which base,
and how a step is recorded in the audit chain."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rulesvc.apikeys import same_actor
from rulesvc.audit.chain import canonical, sha256_hex
from rulesvc.lifecycle.errors import (
    BadRequestError,
    EvidenceFrozenError,
    ForbiddenError,
    ForeignCaseFileError,
    NotFoundError,
    StaleDraftError,
    StateError,
)
from rulesvc.lifecycle.ports import (
    DRAFT,
    KIND_RULESET,
    AuditNote,
    DraftRecord,
    StoreView,
    VersionRecord,
    subject_of,
)
from rulesvc.lifecycle.queries import NAME


def check_name(name: str, what: str = "规则集名称") -> None:
    if not NAME.match(name):
        raise BadRequestError(f"{what}不合法：{name!r}", {"name": name})


def chain_note(step: str, name: str, actor: str, *, kind: str = KIND_RULESET, **fields: Any) -> AuditNote:
    """A lifecycle step of artifact `name` of type `kind` as a chain entry (`<kind>:<name>`)."""
    return AuditNote(subject_of(kind, name), {"step": step, kind: name, "by": actor, **fields}, kind)


def replay_summary(report: Mapping[str, Any] | None) -> dict[str, Any]:
    if not report:
        return {}
    return {
        "from": report.get("from"),
        "to": report.get("to"),
        "decisions": report.get("decisions"),
        "changed": report.get("changed"),
        **{
            key: report[key]
            for key in ("selected_by", "changed_by_later_versions", "timer_firings")
            if key in report
        },
    }


def require_draft(view: StoreView, draft_id: str) -> DraftRecord:
    draft = view.draft(draft_id)
    if draft is None:
        raise NotFoundError(f"草稿 {draft_id} 不存在", {"draft_id": draft_id})
    return draft


def require_status(draft: DraftRecord, status: str, step: str) -> None:
    if draft.status != status:
        raise StateError(
            f"草稿状态为 {draft.status}，只有 {status} 状态的草稿才能{step}",
            {"status": draft.status, "required": status},
        )


def require_own_file(name: str, file: str) -> None:
    if file != name:
        raise ForeignCaseFileError(
            f"{name} 的草稿只能修改本规则集的合规样例 cases/{name}.yaml，不能修改 cases/{file}.yaml"
            f"（其他规则集的样例须由该规则集的草稿修改并经审批）",
            {"ruleset": name, "file": file, "allowed": name},
        )


def require_editable_evidence(draft: DraftRecord) -> None:
    if draft.status != DRAFT:
        raise EvidenceFrozenError(
            f"草稿状态为 {draft.status}：提交时的测试、覆盖率与回放结果已冻结供审批人查看，不能再替换；"
            "如需重新回放，请作者先撤回草稿（withdraw）再重新提交",
            {"status": draft.status, "required": DRAFT},
        )


def evidence_hash(draft: DraftRecord) -> str:
    """SHA-256 of what the approver is shown: the test report (with gaps and their reason) and the replay."""
    return sha256_hex(canonical({"tests": dict(draft.tests), "replay": dict(draft.replay or {})}))


def require_author(draft: DraftRecord, actor: str, step: str) -> None:
    if not same_actor(draft.author, actor):
        raise ForbiddenError(f"只有草稿作者才能{step}草稿", {"author": draft.author})


def require_base(view: StoreView, draft: DraftRecord) -> VersionRecord | None:
    """The latest version, which the draft must still be based on (StaleDraftError otherwise)."""
    head = view.latest(draft.name)
    number = head.version if head else None
    if number != draft.base_version:
        raise StaleDraftError(
            f"草稿基于 v{draft.base_version}，但 {draft.name} 之后已发布 v{number}；请基于最新版本重新提交草稿",
            {"base_version": draft.base_version, "latest_version": number},
        )
    return head
