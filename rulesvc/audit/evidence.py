"""Rows that are acted on are checked against the chain before use, and by `verify`.

The chain vouches for each decision's stored record (`record_sha256` in its `decision` entry), and the
record holds the decision's actions. So a feed record or a webhook body is trusted only when its action is
one of the actions of a record that still hashes to what its chain entry says, and that entry still hashes
to itself. A mismatch stops the use (`EvidenceError`, code `audit.evidence_mismatch`), is logged and
counted, and `verify` reports the row.

What this cannot see alone: an entry rewritten together with every later one and the head (a consistent
forged chain). Signed checkpoints outside the database catch that (`rulesvc.audit.checkpoints`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from rulesvc import exactjson
from rulesvc.audit.chain import KIND_DECISION, ChainEntry, Problem, entry_hash, sha256_hex
from rulesvc.errors import RulesvcError
from rulesvc.masking import MASKERS, MaskPolicy, default_policy, mask_text

if TYPE_CHECKING:
    from rulesvc.audit.records import FeedRecord, StoredDelivery

log = logging.getLogger("rulesvc.evidence")

EVIDENCE_MISMATCH = "audit.evidence_mismatch"
CHAIN_ROLLED_BACK = "audit.chain_rolled_back"


class EvidenceError(RulesvcError):
    """A row about to be acted on does not match what the chain recorded; nothing is done with it."""

    code = EVIDENCE_MISMATCH

    def __init__(self, table: str, row: str, reason: str, message: str) -> None:
        self.table = table
        self.row = row
        self.reason = reason
        super().__init__(message)

    def details(self) -> dict[str, str]:
        return {"table": self.table, "row": self.row, "reason": self.reason}


class ChainRolledBackError(RulesvcError):
    """The chain head is behind what this process saw written or a signed checkpoint holds: entries were
    deleted. Nothing is appended (a re-posted event would otherwise be decided a second time)."""

    code = CHAIN_ROLLED_BACK

    def __init__(self, head_seq: int, known_seq: int) -> None:
        self.head_seq = head_seq
        self.known_seq = known_seq
        super().__init__(
            f"审计日志链被回退：链头在第 {head_seq} 条，但已确认存在第 {known_seq} 条；拒绝写入新的决策"
        )


@dataclass(frozen=True)
class Vouching:
    """A decision's stored record and the chain entry its row points at (None where missing)."""

    decision_id: str
    record_text: str | None
    entry: ChainEntry | None

    @cached_property
    def record(self) -> Mapping[str, Any]:
        """The record parsed (once per read: a re-plan claim's record vouches for many feed rows)."""
        parsed = exactjson.loads(self.record_text) if self.record_text is not None else {}
        return parsed if isinstance(parsed, Mapping) else {}

    @cached_property
    def problem(self) -> tuple[str, str] | None:
        return _record_problem(self)

    @cached_property
    def pairs(self) -> list[tuple[str, Any]]:
        """(ticket id, action) of each of the record's actions: the record's ticket, or for a re-plan claim
        (`action_tickets`, one ticket id per action) each action's own."""
        record = self.record
        actions = list(record.get("actions") or [])
        tickets = record.get(ACTION_TICKETS)
        if isinstance(tickets, list) and len(tickets) == len(actions):
            return [(str(t), a) for t, a in zip(tickets, actions, strict=True)]
        return [(str(record.get("ticket_id")), a) for a in actions]

    @cached_property
    def by_ticket(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for ticket_id, action in self.pairs:
            found.setdefault(ticket_id, []).append(action)
        return found


ACTION_TICKETS = "action_tickets"
"""Record key of a decision whose actions are for several tickets (a re-plan claim): the ticket id of each
action, in the order of `actions`; each feed record of it carries its own action's ticket id."""


def record_problem(vouching: Vouching) -> tuple[str, str] | None:
    """(reason, message) when the record is not what its chain entry vouches for (checked once per
    `Vouching`)."""
    return vouching.problem


def _record_problem(vouching: Vouching) -> tuple[str, str] | None:
    decision_id, record_text, entry = vouching.decision_id, vouching.record_text, vouching.entry
    if record_text is None:
        return "decision_missing", f"决策 {decision_id} 不存在（已被删除）"
    if entry is None or entry.kind != KIND_DECISION or entry.subject != decision_id:
        return "entry_missing", f"决策 {decision_id} 的审计日志条目不存在"
    if entry_hash(entry.seq, entry.at, entry.kind, entry.subject, entry.payload_text, entry.prev_hash) != (
        entry.hash
    ):
        return "entry_mismatch", f"决策 {decision_id} 的审计日志条目被修改"
    payload = entry.payload
    if not isinstance(payload, Mapping) or payload.get("record_sha256") != sha256_hex(record_text):
        return "record_mismatch", f"决策 {decision_id} 的记录与审计日志不符"
    return None


def action_problem(
    vouching: Vouching,
    ticket_id: str,
    action: Mapping[str, Any],
    masking: MaskPolicy | Sequence[MaskPolicy] | None = None,
    *,
    strict: bool = False,
) -> tuple[str, str] | None:
    """(reason, message) unless `action` is one of the vouched record's actions for `ticket_id` (the
    record's ticket, or that action's own in a re-plan claim), or, with `masking`, one of their masked
    forms (what a webhook body carries). `strict`: only the masked forms (the clear action only when no
    masking is given)."""
    problem = record_problem(vouching)
    if problem is not None:
        return problem
    policies = [masking] if isinstance(masking, MaskPolicy) else list(masking or [])
    clear_allowed = not (strict and policies)
    if clear_allowed and dict(action) in vouching.by_ticket.get(ticket_id, ()):
        return None

    def names_ticket(stored: str) -> bool:
        if clear_allowed and stored == ticket_id:
            return True
        if any(p.mask_text(stored) == ticket_id for p in policies):
            return True
        # verify: any masking of the vouched values (a subscription's classes included)
        return not strict and any(masked_form(stored, ticket_id, p) for p in policies)

    candidates = [a for t, a in vouching.pairs if names_ticket(t)]
    if not candidates and not (vouching.pairs == [] and names_ticket(str(vouching.record.get("ticket_id")))):
        return "ticket_mismatch", f"工单号与决策 {vouching.decision_id} 的记录不符"
    shown = dict(action)
    if clear_allowed and shown in candidates:
        return None
    if any(shown in p.mask_actions(candidates) for p in policies):
        return None
    if not strict and any(masked_form(a, action, p) for a in candidates for p in policies):
        return None
    return "action_mismatch", f"动作与决策 {vouching.decision_id} 的记录不符（被修改）"


def masked_form(clear: Any, shown: Any, masking: MaskPolicy) -> bool:
    """Is `shown` `clear` with some of its values masked (by `masking`'s rules, by any mask kind, or in
    full)? What a webhook body of a subscription granted fewer field classes carries: it reveals nothing
    the vouched value does not, and changes nothing else."""
    if isinstance(clear, Mapping):
        return (
            isinstance(shown, Mapping)
            and set(shown) == set(clear)
            and all(masked_form(clear[k], shown[k], masking) for k in clear)
        )
    if isinstance(clear, list):
        return (
            isinstance(shown, list)
            and len(shown) == len(clear)
            and all(masked_form(c, s, masking) for c, s in zip(clear, shown, strict=True))
        )
    if shown == clear or shown == masking.mask(clear):
        return True
    if not isinstance(shown, str) or clear is None or isinstance(clear, bool):
        return False
    text = clear if isinstance(clear, str) else exactjson.dumps(clear)
    return shown in {mask_text(kind, text) for kind in MASKERS}


def delivery_problem(
    body_text: str,
    vouching: Mapping[str, Vouching],
    masking: MaskPolicy | Sequence[MaskPolicy] | None = None,
    *,
    strict: bool = False,
) -> tuple[str, str] | None:
    """(reason, message) unless a webhook body carries an action its decision's vouched record holds (in
    clear or masked by one of `masking`; `strict`, see `action_problem`)."""
    try:
        body = exactjson.loads(body_text)
        decision_id = str(body["decision_id"])
        ticket_id = str(body["ticket_id"])
        action = body["action"]
    except (ValueError, KeyError, TypeError):
        return "body_malformed", "投递内容无法解析"
    if not isinstance(action, dict):
        return "body_malformed", "投递内容无法解析"
    return action_problem(
        vouching.get(decision_id, Vouching(decision_id, None, None)),
        ticket_id,
        action,
        masking,
        strict=strict,
    )


def body_decision_id(body_text: str) -> str:
    try:
        body = exactjson.loads(body_text)
        return str(body.get("decision_id", "")) if isinstance(body, dict) else ""
    except ValueError:
        return ""


_REFUSALS: dict[str, int] = {}
_REFUSALS_LOCK = threading.Lock()


def refusals() -> dict[str, int]:
    """Uses refused for a chain mismatch in this process so far, by table (exported on `/metrics` as
    `rulesvc_integrity_refusals_total`)."""
    with _REFUSALS_LOCK:
        return dict(_REFUSALS)


def alert(table: str, row: str, found: tuple[str, str]) -> None:
    """Log a row refused for not matching the chain (an ERROR line `integrity: ...`) and count it."""
    reason, message = found
    with _REFUSALS_LOCK:
        _REFUSALS[table] = _REFUSALS.get(table, 0) + 1
    log.error("integrity: %s row %s does not match the audit chain (%s): %s", table, row, reason, message)


def refuse(table: str, row: str, found: tuple[str, str]) -> EvidenceError:
    """Log the mismatch (an alert), count it and build the error that stops the use."""
    alert(table, row, found)
    return EvidenceError(table, row, found[0], found[1])


def as_problem(table: str, row: str, found: tuple[str, str], seq: int | None = None) -> Problem:
    return Problem(table, row, found[0], found[1], seq)


class EvidenceReader(Protocol):
    """Reads of acted-on rows next to what the chain vouches for (`rulesvc.storage.evidence_reads`)."""

    def vouching(self, decision_ids: Iterable[str]) -> dict[str, Vouching]: ...

    def feed_pages(self) -> Iterator[list[FeedRecord]]: ...

    def feed_counts(self) -> dict[str, int]: ...

    def decision_records(self) -> Iterator[list[tuple[str, int, str]]]: ...

    def delivery_pages(self) -> Iterator[list[StoredDelivery]]: ...

    def ticket_problems(self) -> list[Problem]: ...


def check_feed(reader: EvidenceReader, records: Sequence[FeedRecord]) -> list[dict[str, Any]]:
    """The feed records' actions, each checked against its decision's vouched record; the first that is
    not vouched for stops the read (`EvidenceError`)."""
    vouching = reader.vouching(r.decision_id for r in records)
    actions: list[dict[str, Any]] = []
    for record in records:
        action = exactjson.loads(record.action_text)
        found = action_problem(vouching[record.decision_id], record.ticket_id, action)
        if found is not None:
            raise refuse("actions", str(record.cursor), found)
        actions.append(action)
    return actions


def verify_rows(
    reader: EvidenceReader, masking: MaskPolicy | Sequence[MaskPolicy] | None = None
) -> list[Problem]:
    """Every feed record, every decision's number of feed records and every webhook body, checked against
    the records the chain vouches for (the records themselves are checked by `verify_store`), and every
    ticket's state against its seal."""
    problems: list[Problem] = []
    for page in reader.feed_pages():
        vouching = reader.vouching(r.decision_id for r in page)
        for record in page:
            try:
                action = exactjson.loads(record.action_text)
            except ValueError:
                action = None
            found = (
                action_problem(vouching[record.decision_id], record.ticket_id, action)
                if isinstance(action, dict)
                else ("action_malformed", "动作无法解析")
            )
            if found is not None:
                problems.append(as_problem("actions", str(record.cursor), found))
    counts = reader.feed_counts()
    for page_of_records in reader.decision_records():
        for decision_id, seq, record_text in page_of_records:
            try:
                expected = len(exactjson.loads(record_text).get("actions", []))
            except (ValueError, AttributeError):
                continue  # an unreadable record is reported by verify_store
            if counts.get(decision_id, 0) != expected:
                problems.append(
                    Problem(
                        "actions",
                        decision_id,
                        "feed_count_mismatch",
                        f"决策 {decision_id} 的动作在动作流中有 {counts.get(decision_id, 0)} 条，记录中有 {expected} 条",
                        seq,
                    )
                )
    for deliveries in reader.delivery_pages():
        vouching = reader.vouching(body_decision_id(d.body) for d in deliveries)
        for delivery in deliveries:
            found = delivery_problem(delivery.body, vouching, masking or default_policy())
            if found is not None:
                problems.append(as_problem("webhook_deliveries", delivery.delivery_id, found))
    problems.extend(reader.ticket_problems())
    return problems
