"""Appending decisions inside a caller's transaction: rows, clear inputs, feed actions and chain entries.

The caller holds the chain-head row lock (`lock_chain_head`) for the rest of its transaction, so chain
entries and action cursors are allocated in commit order. Used by every path that stores decisions in one
transaction with other writes (timer state, ticket snapshots); `chain` and `write_entries` serve every
other appender of the chain too (ruleset changes, clear reads).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table

from rulesvc import exactjson
from rulesvc.audit.chain import KIND_DECISION, ChainEntry, canonical, entry_hash
from rulesvc.audit.evidence import ChainRolledBackError
from rulesvc.decisions.ports import NewDecision, StoredDecision
from rulesvc.decisions.search import decision_terms
from rulesvc.storage.bulk import Rows, Statements
from rulesvc.storage.decision_facts import Seen, observe, select_latest, write_facts
from rulesvc.storage.fact_tables import ReportRollupDayRow, ReportRollupRow
from rulesvc.storage.inputs import stored_input
from rulesvc.storage.report_rollups import late_days
from rulesvc.storage.tables import (
    ActionRow,
    AuditHeadRow,
    AuditRow,
    Base,
    DecisionInputRow,
    DecisionRow,
    DecisionTermRow,
)
from rulesvc.storage.ticket_seals import KIND_TICKETS_SEALED, entry_body_sql, sha256_sql
from rulesvc.storage.timer_tables import TicketRow


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str


class HeadRows:
    """The locked chain-head row, and which database it came from (for the watermark check)."""

    def __init__(self, rows: Rows, pool: Any) -> None:
        self._rows = rows
        self.pool = pool

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows.all()


def lock_chain_head(sql: Statements) -> HeadRows:
    """Lock the chain head; its one row is (seq, hash) (read it with `chain_head`)."""
    return HeadRows(sql.select(_HEAD, ("seq", "hash"), "id", [1], for_update=True), sql.pool)


def chain_head(rows: HeadRows) -> ChainHead:
    """The locked head; raises `ChainRolledBackError` when it is behind the database's watermark (entries
    this process saw committed, or a signed checkpoint holds, were deleted): nothing may be appended."""
    found = rows.all()
    if not found:
        raise RuntimeError("audit_head row missing: the schema was not migrated")
    head = ChainHead(*found[0])
    known = watermark(rows.pool)
    if head.seq < known:
        raise ChainRolledBackError(head.seq, known)
    return head


# The highest chain seq known to exist in each database (keyed by its engine's pool): raised after every
# commit that appended entries and by signed checkpoints at start. A head found below it means entries
# were deleted behind the service's back; appends are refused until an operator restores the chain.
_WATERMARKS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_WATERMARK_LOCK = threading.Lock()


def watermark(pool: Any) -> int:
    with _WATERMARK_LOCK:
        return _WATERMARKS.get(pool, 0)


def raise_watermark(pool: Any, seq: int) -> None:
    """Call after the transaction that wrote entries up to `seq` committed (or with a checkpoint's seq)."""
    with _WATERMARK_LOCK:
        if seq > _WATERMARKS.get(pool, 0):
            _WATERMARKS[pool] = seq


def chain(head: ChainHead, notes: Sequence[tuple[str, str, str, Any]]) -> list[ChainEntry]:
    """The entries for `notes` (at, kind, subject, payload), in order, chained after `head`."""
    return chain_texts(
        head, [(at, kind, subject, canonical(payload)) for at, kind, subject, payload in notes]
    )


def chain_texts(head: ChainHead, notes: Sequence[tuple[str, str, str, str]]) -> list[ChainEntry]:
    """As `chain`, for notes whose payload is already canonical text (only the hashes are computed)."""
    entries: list[ChainEntry] = []
    seq, prev = head.seq, head.hash
    for at, kind, subject, payload_text in notes:
        seq += 1
        prev_hash, prev = prev, entry_hash(seq, at, kind, subject, payload_text, prev)
        entries.append(ChainEntry(seq, at, kind, subject, payload_text, prev_hash, prev))
    return entries


def write_entries(sql: Statements, entries: Sequence[ChainEntry]) -> None:
    """Insert `chain`'s entries and move the head to the last one (the caller holds the head's lock)."""
    if entries:
        sql.insert(_table(AuditRow), [audit_values(entry) for entry in entries])
        sql.update(_HEAD, ["id"], [{"seq": entries[-1].seq, "hash": entries[-1].hash, "id": 1}])


def select_decisions(sql: Statements, event_ids: Sequence[str]) -> Rows:
    """The stored decisions of these events (read them with `stored_decisions`)."""
    return sql.select(_DECISIONS, DECISION_COLUMNS, "event_id", list(event_ids))


def stored_decisions(rows: Rows) -> dict[str, StoredDecision]:
    """By event id."""
    return {row[1]: StoredDecision(*row) for row in rows.all()}


@dataclass(frozen=True)
class PreparedDecisions:
    """What `insert_decisions` writes, built before the chain head is locked: everything but the chain
    entries' seq and hashes, which are all that is left to compute under the lock (`write_prepared`)."""

    news: Sequence[NewDecision]
    notes: list[tuple[str, str, str, str]]
    """(at, kind, subject, canonical payload text) of each chain entry, in order."""
    seal_entry: dict[str, int]
    """Ticket id → index in `notes` of the entry sealing its new state."""
    inputs: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    terms: list[tuple[int, dict[str, Any]]]
    """(index of the decision, row without its chain seq)."""
    facts: list[tuple[int, Seen]]
    """(index of the decision, its facts for `decision_facts`) of the decisions of ticket events."""


def prepare_decisions(
    pool: Any,
    news: Sequence[NewDecision],
    seals: Mapping[str, str] | None = None,
    at: datetime | None = None,
) -> PreparedDecisions:
    """The rows of `insert_decisions`, ready before the chain head is locked (`pool`: the database's)."""
    seals = seals or {}
    last_of: dict[str, int] = {}
    for index, new in enumerate(news):
        if new.ticket_id in seals:
            last_of[new.ticket_id] = index
    sealed_by = {index: ticket_id for ticket_id, index in last_of.items()}
    rest = {ticket_id: digest for ticket_id, digest in seals.items() if ticket_id not in last_of}
    # a decision for several tickets (a re-plan claim) seals the others in its own entry
    claims = [i for i, n in enumerate(news) if n.action_tickets is not None]
    claim = claims[-1] if claims and rest else None
    notes: list[tuple[str, str, str, str]] = [
        (
            n.decided_at.isoformat(),
            KIND_DECISION,
            n.decision_id,
            canonical(
                {**n.audit_payload, "ticket_sha256": seals[sealed_by[i]]}
                if i in sealed_by
                else {**n.audit_payload, "tickets": dict(sorted(rest.items()))}
                if i == claim
                else n.audit_payload
            ),
        )
        for i, n in enumerate(news)
    ]
    if claim is not None:
        last_of.update((ticket_id, claim) for ticket_id in rest)
        rest = {}
    if rest:
        if at is None:
            raise ValueError("sealing tickets without a decision needs the time of the seal")
        payload = {"tickets": dict(sorted(rest.items()))}
        notes.append((at.isoformat(), KIND_TICKETS_SEALED, "", canonical(payload)))
    inputs: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    terms: list[tuple[int, dict[str, Any]]] = []
    facts: list[tuple[int, Seen]] = []
    texts: dict[int, str] = {}  # actions shared by several tickets (a re-plan claim's) are written once
    for index, new in enumerate(news):
        record = new.record if new.record is not None else exactjson.loads(new.record_text)
        seen = observe(new.decision_id, new.ticket_id, new.decided_at, record)
        if seen is not None:
            facts.append((index, seen))
        inputs.append(
            {
                "decision_id": new.decision_id,
                "event": stored_input(pool, new.decision_id, new.clear_input_text),
                "occurred_at": new.occurred_at,
            }
        )
        actions.extend(
            {
                "at": new.decided_at,
                "ticket_id": new.ticket_id if new.action_tickets is None else new.action_tickets[i],
                "decision_id": new.decision_id,
                "action": _action_text(texts, action),
            }
            for i, action in enumerate(new.actions)
        )
        terms.extend(
            (index, {"term": term, "decided_at": new.decided_at, "decision_id": new.decision_id})
            for term in decision_terms(record)
        )
    seal_entry = {t: last_of[t] if t in last_of else len(notes) - 1 for t in sorted(seals)}
    return PreparedDecisions(news, notes, seal_entry, inputs, actions, terms, facts)


def select_latest_facts(sql: Statements, prepared: PreparedDecisions) -> Rows:
    """The latest facts rows of `prepared`'s tickets, for `write_prepared`: issue it after locking the
    chain head (in the same round)."""
    return select_latest(sql, [seen.ticket_id for _, seen in prepared.facts])


def write_prepared(
    sql: Statements, head: ChainHead, prepared: PreparedDecisions, latest: Rows | None = None
) -> tuple[list[StoredDecision], int]:
    """Chain `prepared`'s entries after the locked head and insert everything (joining the caller's
    round; `latest`: `select_latest_facts`, read here when not given); returns the stored decisions and
    the new head's seq."""
    if not prepared.notes:
        return [], head.seq
    entries = chain_texts(head, prepared.notes)
    result = [
        _stored(new, entry.seq, entry.hash)
        for new, entry in zip(prepared.news, entries[: len(prepared.news)], strict=True)
    ]
    decisions = [
        dict(zip(DECISION_COLUMNS, (getattr(stored, f) for f in _STORED_FIELDS), strict=True))
        for stored in result
    ]
    terms = [{**row, "chain_seq": entries[index].seq} for index, row in prepared.terms]
    seal_rows = [
        {"seal_seq": entries[index].seq, "ticket_id": ticket_id}
        for ticket_id, index in prepared.seal_entry.items()
    ]
    with sql.together():
        sql.insert(_DECISIONS, decisions)
        sql.insert(_table(DecisionInputRow), prepared.inputs)
        sql.insert(_table(ActionRow), prepared.actions)
        sql.insert(_table(DecisionTermRow), terms)
        sql.update(_table(TicketRow), ["ticket_id"], seal_rows)
        write_facts(
            sql,
            [(seen, entries[index].seq) for index, seen in prepared.facts],
            latest if latest is not None else select_latest_facts(sql, prepared),
        )
        write_entries(sql, entries)
        # a decision of a day already rolled up (not made by the service: it decides at the time): drop the
        # day's roll-ups, to be rolled again
        late = late_days([new.decided_at for new in prepared.news], datetime.now(UTC))
        sql.delete(_ROLLUPS, ["day"], [{"day": day} for day in late])
        sql.delete(_ROLLUP_DAYS, ["day"], [{"day": day} for day in late])
    return result, entries[-1].seq


def append_prepared(sql: Statements, prepared: PreparedDecisions) -> HeadRows | None:
    """On PostgreSQL, `prepared` holding one decision and its one chain entry (a re-plan claim's): lock the
    chain head, append the entry after it (its hash computed by the server, `entry_body_sql`), move the head
    and write the decision, its input, feed rows, search terms and ticket seals, in one statement joining
    the caller's round; the head is then held for that round and the commit only, where `lock_chain_head`
    and `write_prepared` take a round more. Nothing is written when the head is behind the watermark.
    Read the outcome with `appended`. None (nothing issued) for any other `prepared`."""
    if not sql.postgresql or len(prepared.news) != 1 or len(prepared.notes) != 1 or prepared.facts:
        return None
    [new] = prepared.news
    [(at, kind, subject, payload)] = prepared.notes
    [stored_input] = prepared.inputs
    params = {
        "watermark": watermark(sql.pool),
        "at": at,
        "kind": kind,
        "subject": subject,
        "payload": payload,
        "decision_id": new.decision_id,
        "event_id": new.event_id,
        "ticket_id": new.ticket_id,
        "decided_at": new.decided_at,
        "record": new.record_text,
        "input_salt": new.input_salt,
        "input_digest": new.input_digest,
        "input": stored_input["event"],
        "occurred_at": stored_input["occurred_at"],
        "terms": [row["term"] for _, row in prepared.terms],
        "action_tickets": [row["ticket_id"] for row in prepared.actions],
        "actions": [row["action"] for row in prepared.actions],
        "sealed": list(prepared.seal_entry),
    }
    return HeadRows(sql.query(_APPEND_ONE, params), sql.pool)


def appended(rows: HeadRows, prepared: PreparedDecisions) -> tuple[list[StoredDecision], int]:
    """The stored decision and the new head's seq of `append_prepared` (read after its round); raises
    `ChainRolledBackError` when the head was behind the watermark (nothing was written)."""
    found = rows.all()
    if not found:
        raise RuntimeError("audit_head row missing: the schema was not migrated")
    head_seq, seq, hash_ = found[0]
    if seq is None:
        raise ChainRolledBackError(head_seq, watermark(rows.pool))
    [new] = prepared.news
    return [_stored(new, seq, hash_)], seq


def _stored(new: NewDecision, chain_seq: int, chain_hash: str) -> StoredDecision:
    """`new` as stored under the chain entry (`chain_seq`, `chain_hash`)."""
    return StoredDecision(
        decision_id=new.decision_id,
        event_id=new.event_id,
        ticket_id=new.ticket_id,
        decided_at=new.decided_at,
        record_text=new.record_text,
        input_salt=new.input_salt,
        input_digest=new.input_digest,
        chain_seq=chain_seq,
        chain_hash=chain_hash,
    )


def insert_decisions(
    sql: Statements,
    head: ChainHead,
    news: Sequence[NewDecision],
    seals: Mapping[str, str] | None = None,
    at: datetime | None = None,
) -> tuple[list[StoredDecision], int]:
    """Insert decisions in order, chaining each after the head, and move the head (the caller holds its
    lock); the statements join the caller's current round. Returns them and the new head's seq.

    `seals` (ticket id → digest of its new state, `rulesvc.storage.ticket_seals`) go into the payload of
    each ticket's last decision here, or else into one `tickets_sealed` entry dated `at` after them; each
    ticket's `seal_seq` is pointed at its entry. A caller that can build the rows before locking the head
    calls `prepare_decisions` then, and `write_prepared` under the lock."""
    return write_prepared(sql, head, prepare_decisions(sql.pool, news, seals, at))


def _table(mapped: type[Base]) -> Table:
    return cast(Table, mapped.__table__)


_HEAD = _table(AuditHeadRow)
_ROLLUPS = _table(ReportRollupRow)
_ROLLUP_DAYS = _table(ReportRollupDayRow)
_DECISIONS = _table(DecisionRow)
# The `decisions` columns, in the order of StoredDecision's fields.
DECISION_COLUMNS = (
    "decision_id",
    "event_id",
    "ticket_id",
    "decided_at",
    "record",
    "input_salt",
    "input_digest",
    "chain_seq",
    "chain_hash",
)
_STORED_FIELDS = tuple(field.name for field in fields(StoredDecision))


AUDIT_TABLE = _table(AuditRow)
AUDIT_COLUMNS = ("seq", "at", "kind", "subject", "payload", "prev_hash", "hash")
"""`audit_log` columns in the order of `ChainEntry`'s fields."""


def audit_values(entry: ChainEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "kind": entry.kind,
        "subject": entry.subject,
        "payload": entry.payload_text,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def chain_entry(row: AuditRow) -> ChainEntry:
    """The entry an `audit_log` row holds (the inverse of `audit_values`)."""
    return ChainEntry(row.seq, row.at, row.kind, row.subject, row.payload, row.prev_hash, row.hash)


def stored_decision(row: DecisionRow) -> StoredDecision:
    return StoredDecision(*(getattr(row, column) for column in DECISION_COLUMNS))


def json_text(value: Mapping[str, Any]) -> str:
    return exactjson.dumps(value)


def _action_text(texts: dict[int, str], action: Mapping[str, Any]) -> str:
    """`json_text(action)`, once per action object of a `prepare_decisions` call (`texts`)."""
    found = texts.get(id(action))
    if found is None:
        found = texts[id(action)] = json_text(action)
    return found


# `append_prepared`'s statement: the head locked, the entry chained after it by the server, and every row
# of the decision written only if the entry was (the head not behind the watermark).
_APPEND_ONE = f"""WITH head AS (SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE),
entry AS (
    INSERT INTO audit_log (seq, at, kind, subject, payload, prev_hash, hash)
    SELECT head.seq + 1, %(at)s::text, %(kind)s::text, %(subject)s::text, %(payload)s::text, head.hash, {
    sha256_sql(
        entry_body_sql(
            "%(at)s::text",
            "%(kind)s::text",
            "%(subject)s::text",
            "%(payload)s::text",
            "head.hash",
            "head.seq + 1",
        )
    )
}
    FROM head WHERE head.seq >= %(watermark)s
    RETURNING seq, hash),
moved AS (UPDATE audit_head SET seq = entry.seq, hash = entry.hash FROM entry WHERE audit_head.id = 1),
decision AS (
    INSERT INTO decisions (decision_id, event_id, ticket_id, decided_at, record, input_salt, input_digest,
        chain_seq, chain_hash)
    SELECT %(decision_id)s::text, %(event_id)s::text, %(ticket_id)s::text, %(decided_at)s::timestamptz, %(record)s::text, %(input_salt)s::text,
        %(input_digest)s::text, entry.seq, entry.hash FROM entry),
input AS (
    INSERT INTO decision_inputs (decision_id, event, occurred_at)
    SELECT %(decision_id)s::text, %(input)s::text, %(occurred_at)s::timestamptz FROM entry),
feed AS (
    INSERT INTO actions (at, ticket_id, decision_id, action)
    SELECT %(decided_at)s::timestamptz, a.ticket_id, %(decision_id)s::text, a.action FROM entry,
        unnest(%(action_tickets)b::text[], %(actions)b::text[]) WITH ORDINALITY AS a(ticket_id, action, n)
    ORDER BY a.n),
terms AS (
    INSERT INTO decision_terms (term, decided_at, chain_seq, decision_id)
    SELECT t.term, %(decided_at)s::timestamptz, entry.seq, %(decision_id)s::text
    FROM entry, unnest(%(terms)b::text[]) AS t(term)),
sealed AS (UPDATE tickets SET seal_seq = entry.seq FROM entry WHERE tickets.ticket_id = ANY(%(sealed)b::text[]))
SELECT head.seq, entry.seq, entry.hash FROM head LEFT JOIN entry ON true"""
