"""Ticket state sealed into the chain: a ticket's snapshot and timers decide later (a timer fires on them),
so every transaction that changes them puts their digest into a chain entry and points the ticket's
`seal_seq` at it; before the state is used again the digest is recomputed and compared.

Sealed: the ticket's kind, routing group, snapshot and, per timer, what its deadline and firing depend on
(`SEALED_TIMER_COLUMNS`). Not sealed: derived or scheduling columns (`due_at`, `next_fire_at`,
`next_point`, `stopped_at`, `remaining_us`, `updated_at`), which are recomputed from the sealed ones or
only say when to look again.

The digest lives in the payload of the last `decision` entry of the transaction (`ticket_id` and
`ticket_sha256`), or of a `tickets_sealed` entry (`{"tickets": {id: sha256}}`) for tickets loaded in bulk
or present before sealing existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from rulesvc.audit.chain import ChainEntry, entry_hash, sha256_hex

KIND_TICKETS_SEALED = "tickets_sealed"
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
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def state_digest(
    ticket_id: str, kind: str, group: str, snapshot_text: str, timers: Iterable[Mapping[str, Any]]
) -> str:
    """SHA-256 of a ticket's sealed state; `timers` are `timers` rows as column → value."""
    rows = sorted(
        (
            {
                column: _json(row[column]) if column in ("warnings", "fired") else _plain(row[column])
                for column in SEALED_TIMER_COLUMNS
            }
            for row in timers
        ),
        key=lambda r: str(r["name"]),
    )
    state = {
        "ticket_id": ticket_id,
        "kind": kind,
        "group": group,
        "snapshot": _json(snapshot_text),
        "timers": rows,
    }
    return sha256_hex(orjson.dumps(state, option=orjson.OPT_SORT_KEYS))


def is_empty(snapshot_text: str, timers: Iterable[object]) -> bool:
    """A ticket row just created (nothing known yet): there is nothing to seal."""
    return not list(timers) and _json(snapshot_text) in ({}, None, "")


def sealed_digest(entry: ChainEntry, ticket_id: str) -> str | None:
    payload = entry.payload
    if not isinstance(payload, Mapping):
        return None
    if payload.get("ticket_id") == ticket_id and "ticket_sha256" in payload:
        return str(payload["ticket_sha256"])
    tickets = payload.get("tickets")
    if entry.kind == KIND_TICKETS_SEALED and isinstance(tickets, Mapping) and ticket_id in tickets:
        return str(tickets[ticket_id])
    return None


def seal_problem(
    ticket_id: str, digest: str, empty: bool, seal_seq: int | None, entry: ChainEntry | None
) -> tuple[str, str] | None:
    """(reason, message) unless the ticket's current state is what its seal entry recorded."""
    if seal_seq is None:
        return None if empty else ("seal_missing", f"工单 {ticket_id} 的状态没有对应的审计日志条目")
    if entry is None or entry.seq != seal_seq:
        return "seal_missing", f"工单 {ticket_id} 的状态所指的审计日志条目不存在"
    if entry_hash(entry.seq, entry.at, entry.kind, entry.subject, entry.payload_text, entry.prev_hash) != (
        entry.hash
    ):
        return "entry_mismatch", f"工单 {ticket_id} 的状态所指的审计日志条目被修改"
    if sealed_digest(entry, ticket_id) != digest:
        return "state_mismatch", f"工单 {ticket_id} 的快照或计时器与审计日志记录的不符（被修改）"
    return None
