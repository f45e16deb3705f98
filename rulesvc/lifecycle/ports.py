"""What the ruleset store hands in and out: frozen records and the `RulesetStore` port.

Every change goes through `RulesetStore.write(at, decide)`: the store opens a transaction, takes the audit
chain's head lock, hands `decide` a read view of the current state, and stores what `decide` returns (new
or changed drafts, new versions, chain entries) before committing. `decide` is the use case's pure state
machine; it raises to refuse (nothing is written then). So a check ("the draft is approved", "it is still
based on the latest version") and the write it allows can never be separated by another writer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rulesvc.audit.chain import ChainEntry

DRAFT, SUBMITTED, APPROVED, REJECTED, PUBLISHED = "draft", "submitted", "approved", "rejected", "published"
STATUSES = (DRAFT, SUBMITTED, APPROVED, REJECTED, PUBLISHED)
"""A draft's states: draft → submitted → approved → published, or submitted → rejected."""
STATUS_LABELS = {
    DRAFT: "编辑中",
    SUBMITTED: "待审批",
    APPROVED: "已批准",
    REJECTED: "已驳回",
    PUBLISHED: "已发布",
}
"""Each state as people read it (console and command line)."""

KIND_RULESET = "ruleset"
"""Chain entry kind of every ruleset lifecycle step; the subject is `ruleset:<name>`."""
KIND_CALENDAR = "calendar"
"""Chain entry kind of every calendar lifecycle step; the subject is `calendar:<name>`."""


def subject_of(kind: str, name: str) -> str:
    """The chain subject of an artifact's lifecycle steps: `<kind>:<name>`."""
    return f"{kind}:{name}"


@dataclass(frozen=True)
class VersionRecord:
    """A published, immutable version. `seq` is the publication's sequence number (0 before storing)."""

    name: str
    version: int
    content: str
    content_hash: str
    cases: Mapping[str, str]
    source: str  # import | draft | rollback
    author: str
    reason: str
    created_at: datetime
    published_at: datetime
    published_by: str
    effective_at: datetime
    draft_id: str | None = None
    rollback_of: int | None = None
    approver: str | None = None
    approval_comment: str = ""
    approved_at: datetime | None = None
    seq: int = 0


@dataclass(frozen=True)
class DraftRecord:
    draft_id: str
    name: str
    base_version: int | None
    content: str
    content_hash: str
    cases: Mapping[str, str]
    status: str  # draft | submitted | approved | rejected | published
    source: str  # draft | rollback
    author: str
    reason: str
    created_at: datetime
    updated_at: datetime
    tests: Mapping[str, Any]
    rollback_of: int | None = None
    replay: Mapping[str, Any] | None = None
    submitted_at: datetime | None = None
    reviewer: str | None = None
    review_comment: str = ""
    reviewed_at: datetime | None = None
    published_version: int | None = None
    published_at: datetime | None = None
    published_by: str | None = None
    effective_at: datetime | None = None


@dataclass(frozen=True)
class AuditNote:
    """A chain entry to append (`at` is the transaction's time)."""

    subject: str
    payload: Mapping[str, Any]
    kind: str = KIND_RULESET


@dataclass(frozen=True)
class Change:
    """What `decide` wants written: drafts inserted or replaced (by `draft_id`), versions inserted, entries."""

    drafts: Sequence[DraftRecord] = ()
    versions: Sequence[VersionRecord] = ()
    audit: Sequence[AuditNote] = ()


@dataclass(frozen=True)
class Written:
    change: Change
    entries: list[ChainEntry] = field(default_factory=list)


class StoreView(Protocol):
    """The state `decide` sees, read inside the locked transaction."""

    def latest(self, name: str) -> VersionRecord | None: ...

    def draft(self, draft_id: str) -> DraftRecord | None: ...

    def has_versions(self) -> bool: ...


Decide = Callable[[StoreView], Change]


@dataclass(frozen=True)
class LoggedDecision:
    """A stored decision as the backtest reads it: the clear input event and the masked record."""

    decision_id: str
    decided_at: datetime
    clear_input_text: str | None
    record_text: str
    occurred_at: datetime | None = None


class RulesetStore(Protocol):
    """Versions and drafts of one artifact type (`kind`: rulesets or calendars)."""

    kind: str

    def generation(self) -> int:
        """Grows with every publication of any artifact type (0 before the first): a cheap "did anything
        change?" probe (books hold rulesets and calendars, so either kind of publication reloads them)."""
        ...

    def has_versions(self) -> bool: ...

    def all_versions(self) -> list[VersionRecord]: ...

    def versions(self, name: str) -> list[VersionRecord]: ...

    def get_version(self, name: str, version: int) -> VersionRecord | None: ...

    def latest_versions(self) -> dict[str, VersionRecord]: ...

    def get_draft(self, draft_id: str) -> DraftRecord | None: ...

    def drafts(self, name: str, status: str | None = None) -> list[DraftRecord]: ...

    def write(self, at: datetime, decide: Decide) -> Written: ...

    def history(self, subject: str) -> list[ChainEntry]: ...

    def lifecycle_entries(self) -> list[ChainEntry]:
        """Every chain entry of this store's kind, in chain order."""
        ...

    def logged_decisions(self, start: datetime, end: datetime, limit: int) -> list[LoggedDecision]:
        """Decisions whose event *occurred* in [start, end), in order of occurrence (at most `limit`)."""
        ...
