"""JSON shapes of lifecycle records, shared by the HTTP answers (and so by the CLI that reads them)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rulesvc.lifecycle.gate import corpus_hash
from rulesvc.lifecycle.ports import KIND_RULESET, DraftRecord, VersionRecord
from rulesvc.lifecycle.timeline import VersionState


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def version_json(
    record: VersionRecord,
    *,
    content: bool = False,
    state: VersionState | None = None,
    kind: str = KIND_RULESET,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        kind: record.name,
        "version": record.version,
        **(state.to_json() if state is not None else {}),
        "effective_at": _time(record.effective_at),
        "content_sha256": record.content_hash,
        "cases_sha256": corpus_hash(record.cases),
        "source": record.source,
        "author": record.author,
        "reason": record.reason,
        "approver": record.approver,
        "approval_comment": record.approval_comment,
        "created_at": _time(record.created_at),
        "approved_at": _time(record.approved_at),
        "published_at": _time(record.published_at),
        "published_by": record.published_by,
        "draft_id": record.draft_id,
        "rollback_of": record.rollback_of,
    }
    if content:
        result["content"] = record.content
        result["cases"] = dict(record.cases)
    return result


def draft_json(
    draft: DraftRecord,
    *,
    diff: Mapping[str, Any] | None = None,
    content: bool = False,
    kind: str = KIND_RULESET,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "draft_id": draft.draft_id,
        kind: draft.name,
        "status": draft.status,
        "source": draft.source,
        "base_version": draft.base_version,
        "rollback_of": draft.rollback_of,
        "content_sha256": draft.content_hash,
        "case_files": sorted(draft.cases),
        "author": draft.author,
        "reason": draft.reason,
        "created_at": _time(draft.created_at),
        "updated_at": _time(draft.updated_at),
        "submitted_at": _time(draft.submitted_at),
        "reviewer": draft.reviewer,
        "review_comment": draft.review_comment,
        "reviewed_at": _time(draft.reviewed_at),
        "published_version": draft.published_version,
        "published_at": _time(draft.published_at),
        "effective_at": _time(draft.effective_at),
        "submittable": draft.status == "draft" and not draft.tests.get("failed", 0),
        "tests": dict(draft.tests),
        "replay": dict(draft.replay) if draft.replay is not None else None,
    }
    if diff is not None:
        result["diff"] = dict(diff)
    if content:
        result["content"] = draft.content
        result["cases"] = dict(draft.cases)
    return result


def overview_json(entry: Mapping[str, Any]) -> dict[str, Any]:
    current: VersionRecord | None = entry["in_force"]
    return {
        "name": entry["name"],
        "version": current.version if current else None,
        "effective_at": _time(current.effective_at) if current else None,
        "content_sha256": current.content_hash if current else None,
        "approver": current.approver if current else None,
        "published_at": _time(current.published_at) if current else None,
        "state": "in_force" if current else None,
        "pending": [
            {"version": v.version, "effective_at": _time(v.effective_at), "state": "scheduled"}
            for v in entry["pending"]
        ],
        "superseded": [
            {"version": v.version, "effective_at": _time(v.effective_at), **state.to_json()}
            for v, state in entry.get("superseded", [])
        ],
    }
