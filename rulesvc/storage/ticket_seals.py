"""Ticket state sealed into the chain: a ticket's snapshot, timer journal (`timeline`) and timers decide
later (an event merges into the snapshot, a timer fires on it), so every transaction that changes them puts
their digest into a chain entry and points the ticket's `seal_seq` at it; before the state is used again
the digest is recomputed from the stored bytes and compared (`seal_problem`), and `verify` does the same
for every ticket and also finds a ticket set back to an older sealed state (`seal_stale`).

Sealed: the ticket's kind, routing group, snapshot and timeline as stored, and per timer what its deadline
and firing depend on (`SEALED_TIMER_COLUMNS`), including the calendar version its points are planned on
(`calendar_version`, migration 0022: a re-plan moves a ticket to a new version by its timer rows, without
rewriting its timeline). Not sealed: derived or scheduling columns (`due_at`, `next_fire_at`, `next_point`,
`stopped_at`, `remaining_us`, `updated_at`, `provisional`), recomputed from the sealed ones or only saying
when to look again.

The digest lives in the payload of the ticket's last `decision` entry of the transaction (`ticket_id` and
`ticket_sha256`), or in a `{"tickets": {id: sha256}}` map: of a `tickets_sealed` entry for tickets changed
without a decision (a poll that only moved timers), loaded in bulk, or present before sealing existed
(migrations 0010, 0022); or of a re-plan claim's `decision` entry, which re-seals every ticket it moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from rulesvc.audit.chain import KIND_DECISION, ChainEntry, entry_hash, sha256_hex
from rulesvc.masking import default_policy

KIND_TICKETS_SEALED = "tickets_sealed"
SEALING_KINDS = (KIND_TICKETS_SEALED, KIND_DECISION)
"""Entry kinds whose payload may seal tickets by a `tickets` map (a re-plan claim's decision entry too)."""
SEALED_TIMER_COLUMNS = (
    "name",
    "generation",
    "calendar",
    "rule",
    "status",
    "started_at",
    "duration_us",
    "warnings",
    "anchor_at",
    "consumed_us",
    "fired",
    "calendar_version",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        found = _UTC_TEXT.get(value)  # equal instants in any zone hash and compare equal
        if found is None:
            if len(_UTC_TEXT) > 10_000:
                _UTC_TEXT.clear()
            found = _UTC_TEXT[value] = value.astimezone(UTC).isoformat()
        return found
    return value


# Instants as the digest spells them: timers share them (started and anchored at the same instant; tickets
# started together), and a seal check and the new seal of a unit of work spell each twice.
_UTC_TEXT: dict[datetime, str] = {}


def state_digest(
    ticket_id: str,
    kind: str,
    group: str,
    snapshot_text: str,
    timeline_text: str,
    timers: Iterable[Mapping[str, Any]],
    columns: Sequence[str] = SEALED_TIMER_COLUMNS,
) -> str:
    """SHA-256 of a ticket's sealed state: the stored texts as they are, `timers` as column → value
    (`columns`: the sealed ones; migration 0022 also computes the digest of before it)."""
    rows = sorted(
        ([_plain(row[column]) for column in columns] for row in timers),
        key=lambda r: str(r[0]),
    )
    state = [ticket_id, kind, group, snapshot_text, timeline_text, rows]
    return sha256_hex(orjson.dumps(state))


def is_empty(kind: str, snapshot_text: str, timeline_text: str, timers: Iterable[object]) -> bool:
    """A ticket row just created (nothing known yet): there is nothing to seal."""
    return not kind and not list(timers) and snapshot_text in ("{}", "") and timeline_text in ("{}", "")


def sealed_digest(entry: ChainEntry, ticket_id: str) -> str | None:
    payload = entry.payload
    if not isinstance(payload, Mapping):
        return None
    if payload.get("ticket_id") == ticket_id and "ticket_sha256" in payload:
        return str(payload["ticket_sha256"])
    tickets = payload.get("tickets")
    if entry.kind in SEALING_KINDS and isinstance(tickets, Mapping) and ticket_id in tickets:
        return str(tickets[ticket_id])
    return None


def sealed_tickets(entry: ChainEntry) -> dict[str, str]:
    """Ticket id → digest for every ticket this entry seals."""
    payload = entry.payload
    if not isinstance(payload, Mapping):
        return {}
    if "ticket_sha256" in payload and "ticket_id" in payload:
        return {str(payload["ticket_id"]): str(payload["ticket_sha256"])}
    tickets = payload.get("tickets")
    if entry.kind in SEALING_KINDS and isinstance(tickets, Mapping):
        return {str(k): str(v) for k, v in tickets.items()}
    return {}


SealChecks = dict[int, tuple[bool, dict[str, str]]]
"""Seal entries already looked at, by seq: (its hash recomputes, ticket id → digest it seals). Tickets sealed
by one entry (a group commit, a re-plan claim) share it: hashed and parsed once per read."""


def seal_problem(
    ticket_id: str,
    digest: str,
    empty: bool,
    seal_seq: int | None,
    entry: ChainEntry | None,
    checks: SealChecks | None = None,
) -> tuple[str, str] | None:
    """(reason, message) unless the ticket's current state is what its seal entry recorded (the ticket id
    masked in the message: it may carry personal data). `checks`: entries looked at before, shared."""
    if seal_seq is None:
        return None if empty else ("seal_missing", f"工单 {_shown(ticket_id)} 的状态没有对应的审计日志条目")
    if entry is None or entry.seq != seal_seq:
        return "seal_missing", f"工单 {_shown(ticket_id)} 的状态所指的审计日志条目不存在"
    checks = {} if checks is None else checks
    found = checks.get(entry.seq)
    if found is None:
        recomputed = entry_hash(
            entry.seq, entry.at, entry.kind, entry.subject, entry.payload_text, entry.prev_hash
        )
        try:
            sealed = sealed_tickets(entry)
        except ValueError:
            sealed = {}
        found = checks[entry.seq] = (recomputed == entry.hash, sealed)
    if not found[0]:
        return "entry_mismatch", f"工单 {_shown(ticket_id)} 的状态所指的审计日志条目被修改"
    if found[1].get(ticket_id) != digest:
        return (
            "state_mismatch",
            f"工单 {_shown(ticket_id)} 的快照、时间线或计时器与审计日志记录的不符（被修改）",
        )
    return None


def _shown(ticket_id: str) -> str:
    """The ticket id as a message shows it (masked: it may carry personal data; the seal names it clear)."""
    return default_policy().mask_text(ticket_id)


# -- the same checks in PostgreSQL's SQL ---------------------------------------------------------------------
# A re-plan claim reads nothing of a ticket but its timers, so PostgreSQL computes what sealing needs (the
# digest of the stored state, the state's digest once re-planned, the seal entry's hash) next to the rows,
# byte for byte as `state_digest` and `entry_hash` do: JSON strings as `to_json` writes them (the escapes of
# `json.dumps(..., ensure_ascii=False)` and orjson), instants as `datetime.isoformat` in UTC, the timers in
# code point order of their names (`COLLATE "C"`: UTF-8 bytes sort as code points). A value the SQL spells
# differently from Python can only make a digest differ, never agree wrongly (equal SHA-256 means equal
# text, and the text is unambiguous JSON): such a ticket is checked again in Python (`seal_problem`).


def _sql_text(column: str) -> str:
    return f"to_json({column})::text"


def _sql_instant(column: str) -> str:
    utc = f"({column} AT TIME ZONE 'UTC')"
    # whole seconds (the common case) from to_json, cheaper than to_char
    whole = f"""rtrim(to_json({utc})::text, '"') || '+00:00"'"""
    fraction = f"""'"' || to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00"'"""
    return f"(CASE WHEN date_trunc('second', {column}) = {column} THEN {whole} ELSE {fraction} END)"


def _sql_number(column: str) -> str:
    return f"coalesce(({column})::text, 'null')"


_SQL_TIMER_COLUMNS = {
    "name": _sql_text,
    "generation": _sql_number,
    "calendar": _sql_text,
    "rule": _sql_text,
    "status": _sql_text,
    "started_at": _sql_instant,
    "duration_us": _sql_number,
    "warnings": _sql_text,
    "anchor_at": _sql_instant,
    "consumed_us": _sql_number,
    "fired": _sql_text,
    "calendar_version": _sql_number,
}
assert tuple(_SQL_TIMER_COLUMNS) == SEALED_TIMER_COLUMNS


def sha256_sql(text: str) -> str:
    """SQL: the hex SHA-256 of the UTF-8 bytes of the text expression `text` (`sha256_hex`)."""
    return f"encode(sha256(convert_to({text}, 'UTF8')), 'hex')"


def replan_digests_sql(moved: str) -> str:
    """A statement selecting (ticket id, seal seq, state digest, digest once re-planned) of the tickets
    whose ids are the parameter `%(ids)b`; re-planned: every timer of theirs (alias `m`) for which the SQL
    condition `moved` holds gets `calendar_version` = the parameter `%(version)s`. The texts shared by both
    digests are built once (`OFFSET 0` keeps PostgreSQL from inlining them into each)."""
    cells = [
        render(f"m.{column}") for column, render in _SQL_TIMER_COLUMNS.items() if column != "calendar_version"
    ]
    assert SEALED_TIMER_COLUMNS[-1] == "calendar_version"
    row = "'[' || " + " || ',' || ".join(cells) + " || ','"
    moved_version = f"CASE WHEN {moved} THEN %(version)s ELSE m.calendar_version END"
    head = " || ',' || ".join(
        _sql_text(f"t.{c}") for c in ("ticket_id", "kind", "group_name", "snapshot", "timeline")
    )

    def digest(version: str) -> str:
        rows = f"""coalesce(string_agg(r.cells || r.{version} || ']', ',' ORDER BY r.name COLLATE "C"), '')"""
        return sha256_sql(f"min(h.head) || {rows} || ']]'")

    return (
        f"SELECT t.ticket_id, t.seal_seq, {digest('stored')}, {digest('moved')} FROM tickets t"
        f" CROSS JOIN LATERAL (SELECT '[' || {head} || ',[' AS head OFFSET 0) h"
        f" LEFT JOIN LATERAL (SELECT m.name, {row} AS cells, {_sql_number('m.calendar_version')} AS stored,"
        f" {_sql_number(moved_version)} AS moved FROM timers m WHERE m.ticket_id = t.ticket_id OFFSET 0) r"
        " ON true WHERE t.ticket_id = ANY(%(ids)b::text[]) GROUP BY t.ticket_id"
    )


def entry_body_sql(at: str, kind: str, subject: str, payload: str, prev_hash: str, seq: str) -> str:
    """The text `entry_hash` hashes, of SQL expressions for an entry's fields (`payload` canonical text)."""
    return (
        f"""'{{"at":' || {_sql_text(at)} || ',"kind":' || {_sql_text(kind)}"""
        f""" || ',"payload":' || {payload} || ',"prev":' || {_sql_text(prev_hash)}"""
        f""" || ',"seq":' || ({seq})::text || ',"subject":' || {_sql_text(subject)} || '}}'"""
    )


def entry_hash_sql(entry: str) -> str:
    """A boolean SQL expression: the `audit_log` row `entry` (alias) hashes to its `hash` (`entry_hash`)."""
    fields = (f"{entry}.{c}" for c in ("at", "kind", "subject", "payload", "prev_hash", "seq"))
    return f"{sha256_sql(entry_body_sql(*fields))} = {entry}.hash"
