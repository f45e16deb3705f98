"""Evidence files of a draft or a published version (`rulesvc.testreport`): every compliance case run again
as the test gate runs it, with what the lifecycle knows of each ruleset version tested (content hash, the
audit chain entry that published it, author, approver, effective time).

A draft is run with the other rulesets' versions in force now and its own case file (the gate's first
scenario); a published version with the versions of the other rulesets in force when it took (or takes)
effect and the case files of all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime

from rulesvc.audit.chain import ChainEntry
from rulesvc.cases.runner import run_cases
from rulesvc.lifecycle.draft_gate import draft_runs
from rulesvc.lifecycle.errors import InvalidDraftError
from rulesvc.lifecycle.gate import LockedBook, corpus, corpus_hash, load_corpus
from rulesvc.lifecycle.ports import RulesetStore, VersionRecord
from rulesvc.lifecycle.queries import RulesetQueries, publishing_entries
from rulesvc.lifecycle.timeline import EPOCH, STATE_LABELS, in_force, version_states
from rulesvc.testreport.document import Evidence, TestedRuleset, build_evidence, local_time


def effective_label(record: VersionRecord) -> str:
    """A version's effective time in Asia/Shanghai; a version in force since the epoch (imported at first
    start, so that earlier events are still decided) reads `导入即生效（<import time>）`."""
    if record.effective_at <= EPOCH:
        source = "导入" if record.source == "import" else "发布"
        return f"{source}即生效（{local_time(record.published_at)}）"
    return local_time(record.effective_at)


def tested_version(record: VersionRecord, entry: ChainEntry | None, state: str = "") -> TestedRuleset:
    return TestedRuleset(
        name=record.name,
        version=f"v{record.version}",
        content_sha256=record.content_hash,
        chain_seq=entry.seq if entry is not None else None,
        chain_hash=entry.hash if entry is not None else None,
        author=record.author,
        approver=record.approver or ("（导入，无审批）" if record.source == "import" else None),
        approved_at=record.approved_at,
        effective=effective_label(record),
        state=state or ("已发布，但审计链中没有发布记录" if entry is None else ""),
    )


def _tested(store: RulesetStore, records: Iterable[VersionRecord], now: datetime) -> list[TestedRuleset]:
    chosen = list(records)
    entries = publishing_entries(store)
    states = version_states(store.all_versions(), now)
    result = []
    for record in chosen:
        state = states.get((record.name, record.version))
        label = STATE_LABELS[state.state] if state is not None else ""
        result.append(tested_version(record, entries.get((record.name, record.version)), label))
    return result


def published_matches(
    store: RulesetStore, hashes: Mapping[str, str], now: datetime
) -> dict[str, TestedRuleset]:
    """For working copies (name → content hash): the published version holding exactly that content, if
    any (the newest such), as tested evidence."""
    matches: dict[str, VersionRecord] = {}
    for record in store.all_versions():
        if hashes.get(record.name) == record.content_hash:
            matches[record.name] = record
    return {t.name: t for t in _tested(store, matches.values(), now)}


def draft_evidence(
    queries: RulesetQueries, lock: threading.Lock | None, name: str, draft_id: str
) -> Evidence:
    now = queries.clock.now()
    draft = queries.draft(name, draft_id)
    versions = queries.store.all_versions()
    ruleset = queries.factory.ruleset(name, draft.content)
    runs, _own, _base = draft_runs(
        queries.factory, queries.shipped_cases, name, ruleset, draft.cases, versions, now
    )
    run = runs[0]
    report = run_cases(LockedBook(run.book, lock), run.cases, run.book.all_refs())
    base = f"基于 v{draft.base_version}" if draft.base_version else "新规则集"
    subject = TestedRuleset(
        name=name,
        version=f"草稿 {draft.draft_id[:8]}（{base}）",
        content_sha256=draft.content_hash,
        author=draft.author,
        approver=draft.reviewer if draft.status in ("approved", "published") else None,
        approved_at=draft.reviewed_at if draft.status in ("approved", "published") else None,
        state=f"未发布（草稿，状态 {draft.status}）",
    )
    return build_evidence(
        f"规则集 {name} 草稿 {draft.draft_id}（与现行版本一起运行全部样例）",
        [subject, *_tested(queries.store, run.scenario.chosen.values(), now)],
        report,
        now,
        corpus_hash(run.files),
    )


def version_evidence(
    queries: RulesetQueries, lock: threading.Lock | None, name: str, number: int
) -> Evidence:
    now = queries.clock.now()
    record = queries.version(name, number)
    others = {
        n: r for n, r in in_force(queries.store.all_versions(), record.effective_at).items() if n != name
    }
    chosen = {**others, name: record}
    files = corpus(queries.shipped_cases, chosen.values())
    cases, errors = load_corpus(files, queries.factory.kinds)
    if errors:
        raise InvalidDraftError(errors, "合规样例文件有错误")
    book = queries.factory.book({n: queries.factory.stored(r) for n, r in chosen.items()})
    report = run_cases(LockedBook(book, lock), cases, book.all_refs())
    return build_evidence(
        f"规则集 {name} v{number}（与其生效时的其他规则集版本一起运行全部样例）",
        _tested(queries.store, chosen.values(), now),
        report,
        now,
        corpus_hash(files),
    )
