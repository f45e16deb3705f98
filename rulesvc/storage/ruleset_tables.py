"""ORM tables of the lifecycle of versioned artifacts (rulesets, calendars): published versions and drafts
under review. Private to storage.

Created by migration `0004`; `artifact` (`ruleset` | `calendar`) by `0008`. Version rows are never updated or deleted: a version is what was approved
and published, with who and when. Every write to either table happens under the audit chain's head lock,
in the same transaction as its chain entry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rulesvc.storage.tables import Base, Int64, UTCDateTime


class RulesetVersionRow(Base):
    """One published version. `id` grows with every publication: replicas poll `max(id)` to notice one."""

    __tablename__ = "ruleset_versions"
    __table_args__ = (
        UniqueConstraint("artifact", "name", "version", name="uq_ruleset_versions_artifact_name_version"),
        Index("ix_ruleset_versions_effective_at", "effective_at"),
    )

    id: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=True)
    artifact: Mapped[str] = mapped_column(String(16), default="ruleset", server_default="ruleset")
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    cases: Mapped[str] = mapped_column(Text)  # JSON {case file: YAML text}
    source: Mapped[str] = mapped_column(String(16))  # import | draft | rollback
    draft_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    rollback_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    author: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    approver: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approval_comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_by: Mapped[str] = mapped_column(String(64))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RulesetDraftRow(Base):
    """A proposed change and where it stands: draft → submitted → approved → published (or rejected)."""

    __tablename__ = "ruleset_drafts"
    __table_args__ = (Index("ix_ruleset_drafts_name", "name"),)

    draft_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    artifact: Mapped[str] = mapped_column(String(16), default="ruleset", server_default="ruleset")
    name: Mapped[str] = mapped_column(String(200))
    base_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    cases: Mapped[str] = mapped_column(Text)  # JSON {case file: YAML text} replacing the current ones
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # draft | rollback
    rollback_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    author: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    tests: Mapped[str] = mapped_column(Text)  # JSON test report of the last run
    replay: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON backtest report
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reviewer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    review_comment: Mapped[str] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    published_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
