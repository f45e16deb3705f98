"""What storage hands in and out: frozen records and the repository protocols (the ports).

ORM classes never leave `rulesvc.storage`; callers see only these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from rulesvc.audit.chain import ChainEntry
from rulesvc.audit.records import FeedRecord
from rulesvc.decisions.search import DecisionQuery
from rulesvc.decisions.ticket_reports import TicketReport
from rulesvc.people.model import ApiKeyRecord
from rulesvc.sla.outcomes import SlaOutcome
from rulesvc.sla.ticket_timers import ScheduledTimer


@dataclass(frozen=True)
class NewDecision:
    """A decision ready to be stored with its actions and its audit entry, in one transaction.

    `record_text` is the canonical JSON of the masked record; `clear_input_text` the canonical JSON of the
    event as received (kept apart, for compliance only); `audit_payload` goes into the chain entry.
    """

    decision_id: str
    event_id: str
    ticket_id: str
    decided_at: datetime
    record_text: str
    clear_input_text: str
    input_salt: str
    input_digest: str
    actions: Sequence[Mapping[str, Any]]
    audit_payload: Mapping[str, Any]
    ticket_work: Callable[[TicketView], TicketWrite] | None = field(default=None, compare=False, repr=False)
    """Run by the store under the ticket's lock, in the same transaction: the timer changes, snapshot and
    final record of this decision (`rulesvc.decisions.ticket_work.EventTicketWork`). None: the ticket is untouched."""
    occurred_at: datetime | None = None
    """When the event occurred, stored with the clear input (backtests select events by it)."""
    action_tickets: Sequence[str] | None = None
    """A decision for several tickets (a re-plan claim, `ticket_id` empty): the ticket of each action, in
    order (its feed record's `ticket_id`); it also seals the tickets of its transaction that no decision of
    their own seals (`rulesvc.storage.ticket_seals`)."""
    record: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """The record `record_text` was written from, when the caller has it (the store then reads its search
    terms from it instead of parsing the text back: a re-plan claim's record holds hundreds of actions)."""


@dataclass(frozen=True)
class TicketView:
    """A locked ticket: its latest snapshot (`{}` if never seen), routing group and every timer."""

    ticket_id: str
    kind: str
    snapshot: Mapping[str, Any]
    group: str
    timers: tuple[ScheduledTimer, ...]
    timeline: Mapping[str, Any] = field(default_factory=dict)
    """The ticket's timer timeline as stored (`rulesvc.sla.ticket_timers.TicketTimers`); `{}` if none."""


@dataclass(frozen=True)
class TicketWrite:
    """Everything one unit of work on a ticket stores, atomically. None/empty = unchanged."""

    decisions: Sequence[NewDecision] = ()
    snapshot: Mapping[str, Any] | None = None
    kind: str | None = None
    group: str | None = None
    timers: Sequence[ScheduledTimer] = ()
    sla: Sequence[SlaOutcome] = ()
    """SLA figures new to the ticket."""
    sla_updates: Sequence[SlaOutcome] = ()
    """Stored SLA figures (same ticket, timer and generation) that changed."""
    sla_deletes: Sequence[tuple[str, int]] = ()
    """(timer, generation) of stored SLA figures that no longer exist."""
    timeline: Mapping[str, Any] | None = None
    late_by: Sequence[float] = ()
    """Seconds each fired timer point was late (not stored: the decisions carry it; for metrics)."""


@dataclass(frozen=True)
class StoredDecision:
    decision_id: str
    event_id: str
    ticket_id: str
    decided_at: datetime
    record_text: str
    input_salt: str
    input_digest: str
    chain_seq: int
    chain_hash: str


@dataclass(frozen=True)
class DecisionEvidence:
    """A `decision` chain entry next to the stored rows it vouches for (None where a row is missing)."""

    entry: ChainEntry
    event_id: str | None
    ticket_id: str | None
    record_text: str | None
    input_salt: str | None
    clear_input_text: str | None


class DecisionStore(Protocol):
    def get_decision(self, decision_id: str) -> StoredDecision | None: ...

    def get_clear_input(self, decision_id: str) -> str | None: ...

    def term_counts(self, terms: Sequence[str], start: datetime, end: datetime) -> dict[str, int]:
        """How many decisions in [start, end) carry each of `terms` (those with none left out)."""
        ...

    def timers_due(
        self, now: datetime, until: datetime, late_after: timedelta, ruleset: str | None, group: str | None
    ) -> list[dict[str, Any]]:
        """Pending timer points falling due in [now, until) and overdue ones, by ruleset, group, timer and
        point (`rulesvc.storage.report_reads.timers_due`)."""
        ...

    def late_fires(
        self, start: datetime, end: datetime, late_after: timedelta, ruleset: str | None, group: str | None
    ) -> list[dict[str, Any]]:
        """Timer points fired in [start, end), how many late, by ruleset, group, timer and point."""
        ...

    def ticket_report(self, asked: TicketReport) -> dict[str, Any]:
        """The ticket report over the facts of the decisions of its period (`rulesvc.decisions.ticket_reports`)."""
        ...

    def search_decisions(self, query: DecisionQuery) -> list[StoredDecision]:
        """Newest first (decided_at, chain_seq descending), at most `query.limit`."""
        ...

    def append_decision(self, new: NewDecision) -> tuple[StoredDecision, bool]:
        """Store it unless `event_id` is already stored; returns (the stored decision, created?)."""
        ...

    @property
    def commits_in_background(self) -> bool:
        """True when `append_decision_later` returns at once (its commit runs on a writer thread)."""
        ...

    def append_decision_later(
        self,
        new: NewDecision,
        callback: Callable[[tuple[StoredDecision, bool] | None, BaseException | None], None],
    ) -> None:
        """`append_decision` whose result goes to `callback(result, error)`, from the writer thread."""
        ...

    def list_actions(self, after: int, limit: int) -> list[FeedRecord]: ...

    def append_audit(self, at: str, kind: str, subject: str, payload: Mapping[str, Any]) -> ChainEntry: ...

    def audit_entries(self, after: int = 0) -> Iterator[ChainEntry]:
        """Entries with seq > `after`, in seq order."""
        ...

    def latest_audit_entries(self, kinds: Sequence[str], limit: int) -> list[ChainEntry]:
        """The newest `limit` entries of these kinds, newest first (index `ix_audit_log_kind_seq`)."""
        ...

    def chain_head(self) -> tuple[int, str]: ...

    def decision_evidence(self) -> Iterator[DecisionEvidence]: ...

    def unlogged_decisions(self) -> list[tuple[str, int]]:
        """(decision_id, chain_seq) of decision rows that no `decision` chain entry names."""
        ...

    def raise_known_seq(self, seq: int) -> None: ...

    def ping(self) -> datetime | None:
        """Reach the database; its server's clock when it has one of its own (for the replica's offset)."""
        ...


class KeyStore(Protocol):
    def create_key(self, record: ApiKeyRecord) -> None: ...

    def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...

    def list_keys(self) -> list[ApiKeyRecord]: ...

    def revoke_key(self, key_id: str, at: datetime) -> bool: ...

    def count_keys(self) -> int: ...
