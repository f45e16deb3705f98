"""SQLAlchemy implementation of `RulesetStore` (PostgreSQL and SQLite), one instance per artifact type
(rulesets, calendars) over the same two tables, told apart by their `artifact` column.

Writes take the audit chain's head lock (`SELECT ... FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on
SQLite) before reading the state they check, so lifecycle steps are serialized with each other and with
decisions, and each step's chain entry commits with it or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from rulesvc import exactjson
from rulesvc.audit.chain import ChainEntry
from rulesvc.lifecycle.ports import (
    KIND_RULESET,
    Decide,
    DraftRecord,
    LoggedDecision,
    VersionRecord,
    Written,
)
from rulesvc.storage.bulk import Statements
from rulesvc.storage.decision_writes import (
    chain,
    chain_entry,
    chain_head,
    lock_chain_head,
    raise_watermark,
    write_entries,
)
from rulesvc.storage.engine import writer
from rulesvc.storage.inputs import checked_input
from rulesvc.storage.ruleset_tables import RulesetDraftRow, RulesetVersionRow
from rulesvc.storage.tables import AuditRow, DecisionInputRow, DecisionRow


class SqlRulesetStore:
    def __init__(self, engine: Engine, kind: str = KIND_RULESET) -> None:
        self.engine = engine
        self.kind = kind
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=writer(engine), expire_on_commit=False)

    # -- versions -----------------------------------------------------------------------------------------

    def generation(self) -> int:
        with self._read() as session:
            return int(session.scalar(select(func.max(RulesetVersionRow.id))) or 0)

    def has_versions(self) -> bool:
        with self._read() as session:
            return _View(session, self.kind).has_versions()

    def all_versions(self) -> list[VersionRecord]:
        with self._read() as session:
            rows = session.scalars(
                select(RulesetVersionRow)
                .where(RulesetVersionRow.artifact == self.kind)
                .order_by(RulesetVersionRow.id)
            ).all()
            return [_version(row) for row in rows]

    def versions(self, name: str) -> list[VersionRecord]:
        with self._read() as session:
            rows = session.scalars(
                select(RulesetVersionRow)
                .where(RulesetVersionRow.artifact == self.kind, RulesetVersionRow.name == name)
                .order_by(RulesetVersionRow.version)
            ).all()
            return [_version(row) for row in rows]

    def get_version(self, name: str, version: int) -> VersionRecord | None:
        with self._read() as session:
            row = session.scalars(
                select(RulesetVersionRow).where(
                    RulesetVersionRow.artifact == self.kind,
                    RulesetVersionRow.name == name,
                    RulesetVersionRow.version == version,
                )
            ).first()
            return _version(row) if row is not None else None

    def latest_versions(self) -> dict[str, VersionRecord]:
        latest: dict[str, VersionRecord] = {}
        for record in self.all_versions():
            if record.name not in latest or record.version > latest[record.name].version:
                latest[record.name] = record
        return latest

    # -- drafts -------------------------------------------------------------------------------------------

    def get_draft(self, draft_id: str) -> DraftRecord | None:
        with self._read() as session:
            return _View(session, self.kind).draft(draft_id)

    def drafts(self, name: str, status: str | None = None) -> list[DraftRecord]:
        query = select(RulesetDraftRow).where(
            RulesetDraftRow.artifact == self.kind, RulesetDraftRow.name == name
        )
        if status is not None:
            query = query.where(RulesetDraftRow.status == status)
        with self._read() as session:
            rows = session.scalars(query.order_by(RulesetDraftRow.created_at)).all()
            return [_draft(row) for row in rows]

    # -- writes -------------------------------------------------------------------------------------------

    def write(self, at: datetime, decide: Decide) -> Written:
        with self._write() as session, session.begin():
            sql = Statements(session.connection())
            head = chain_head(lock_chain_head(sql))
            change = decide(_View(session, self.kind))
            for draft in change.drafts:
                row = session.get(RulesetDraftRow, draft.draft_id)
                if row is None:
                    session.add(RulesetDraftRow(artifact=self.kind, **_draft_values(draft)))
                else:
                    for key, value in _draft_values(draft).items():
                        setattr(row, key, value)
            for version in change.versions:
                session.add(RulesetVersionRow(artifact=self.kind, **_version_values(version)))
            entries = chain(
                head, [(at.isoformat(), n.kind, n.subject, dict(n.payload)) for n in change.audit]
            )
            write_entries(sql, entries)
        if entries:
            raise_watermark(self.engine.pool, entries[-1].seq)
        return Written(change, entries)

    # -- reads for history and backtests ------------------------------------------------------------------

    def history(self, subject: str) -> list[ChainEntry]:
        with self._read() as session:
            rows = session.scalars(
                select(AuditRow).where(AuditRow.subject == subject).order_by(AuditRow.seq)
            ).all()
            return [chain_entry(r) for r in rows]

    def lifecycle_entries(self) -> list[ChainEntry]:
        with self._read() as session:
            rows = session.scalars(
                select(AuditRow).where(AuditRow.kind == self.kind).order_by(AuditRow.seq)
            ).all()
            return [chain_entry(r) for r in rows]

    def logged_decisions(self, start: datetime, end: datetime, limit: int) -> list[LoggedDecision]:
        with self._read() as session:
            rows = session.execute(
                select(
                    DecisionRow.decision_id,
                    DecisionRow.decided_at,
                    DecisionInputRow.occurred_at,
                    DecisionRow.record,
                    DecisionInputRow.event,
                )
                .join(DecisionInputRow, DecisionInputRow.decision_id == DecisionRow.decision_id)
                .where(DecisionInputRow.occurred_at >= start, DecisionInputRow.occurred_at < end)
                .order_by(DecisionInputRow.occurred_at, DecisionRow.chain_seq)
                .limit(limit)
            ).all()
            return [
                LoggedDecision(
                    decision_id,
                    decided_at,
                    checked_input(self.engine.pool, decision_id, clear),
                    record,
                    occurred_at,
                )
                for decision_id, decided_at, occurred_at, record, clear in rows
            ]


class _View:
    """`StoreView` over the locked transaction's session."""

    def __init__(self, session: Session, kind: str) -> None:
        self._session = session
        self._kind = kind

    def latest(self, name: str) -> VersionRecord | None:
        row = self._session.scalars(
            select(RulesetVersionRow)
            .where(RulesetVersionRow.artifact == self._kind, RulesetVersionRow.name == name)
            .order_by(RulesetVersionRow.version.desc())
            .limit(1)
        ).first()
        return _version(row) if row is not None else None

    def draft(self, draft_id: str) -> DraftRecord | None:
        row = self._session.get(RulesetDraftRow, draft_id)
        return _draft(row) if row is not None and row.artifact == self._kind else None

    def has_versions(self) -> bool:
        return (
            self._session.scalar(
                select(RulesetVersionRow.id).where(RulesetVersionRow.artifact == self._kind).limit(1)
            )
            is not None
        )


def _dumps(value: Any) -> str:
    return exactjson.dumps(value, sort_keys=True)  # replay reports hold actions: decimals keep their digits


def _cases(text: str | None) -> dict[str, str]:
    value = json.loads(text) if text else {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _version(row: RulesetVersionRow) -> VersionRecord:
    return VersionRecord(
        name=row.name,
        version=row.version,
        content=row.content,
        content_hash=row.content_hash,
        cases=_cases(row.cases),
        source=row.source,
        author=row.author,
        reason=row.reason,
        created_at=row.created_at,
        published_at=row.published_at,
        published_by=row.published_by,
        effective_at=row.effective_at,
        draft_id=row.draft_id,
        rollback_of=row.rollback_of,
        approver=row.approver,
        approval_comment=row.approval_comment,
        approved_at=row.approved_at,
        seq=row.id,
    )


def _version_values(record: VersionRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "version": record.version,
        "content": record.content,
        "content_hash": record.content_hash,
        "cases": _dumps(dict(record.cases)),
        "source": record.source,
        "draft_id": record.draft_id,
        "rollback_of": record.rollback_of,
        "author": record.author,
        "reason": record.reason,
        "approver": record.approver,
        "approval_comment": record.approval_comment,
        "created_at": record.created_at,
        "approved_at": record.approved_at,
        "published_at": record.published_at,
        "published_by": record.published_by,
        "effective_at": record.effective_at,
    }


def _draft(row: RulesetDraftRow) -> DraftRecord:
    tests: Mapping[str, Any] = json.loads(row.tests) if row.tests else {}
    return DraftRecord(
        draft_id=row.draft_id,
        name=row.name,
        base_version=row.base_version,
        content=row.content,
        content_hash=row.content_hash,
        cases=_cases(row.cases),
        status=row.status,
        source=row.source,
        author=row.author,
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tests=tests,
        rollback_of=row.rollback_of,
        replay=exactjson.loads(row.replay) if row.replay else None,
        submitted_at=row.submitted_at,
        reviewer=row.reviewer,
        review_comment=row.review_comment,
        reviewed_at=row.reviewed_at,
        published_version=row.published_version,
        published_at=row.published_at,
        published_by=row.published_by,
        effective_at=row.effective_at,
    )


def _draft_values(record: DraftRecord) -> dict[str, Any]:
    return {
        "draft_id": record.draft_id,
        "name": record.name,
        "base_version": record.base_version,
        "content": record.content,
        "content_hash": record.content_hash,
        "cases": _dumps(dict(record.cases)),
        "status": record.status,
        "source": record.source,
        "rollback_of": record.rollback_of,
        "author": record.author,
        "reason": record.reason,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "tests": _dumps(dict(record.tests)),
        "replay": _dumps(dict(record.replay)) if record.replay is not None else None,
        "submitted_at": record.submitted_at,
        "reviewer": record.reviewer,
        "review_comment": record.review_comment,
        "reviewed_at": record.reviewed_at,
        "published_version": record.published_version,
        "published_at": record.published_at,
        "published_by": record.published_by,
        "effective_at": record.effective_at,
    }
