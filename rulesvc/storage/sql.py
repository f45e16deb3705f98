"""SQLAlchemy implementation of the decision and key stores (PostgreSQL and SQLite).

Every append (decision or audit entry) locks the chain-head row first, so appends are serialized across
threads and processes, the idempotency re-check under that lock sees any racing twin that committed, and
action cursors are allocated in commit order (a feed reader never skips a cursor that commits late).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import sessionmaker

from rulesvc.audit.chain import KIND_DECISION, ChainEntry
from rulesvc.audit.evidence import EvidenceError
from rulesvc.audit.records import FeedRecord
from rulesvc.decisions.ports import (
    DecisionEvidence,
    NewDecision,
    StoredDecision,
)
from rulesvc.decisions.search import DecisionQuery
from rulesvc.decisions.ticket_reports import TicketReport
from rulesvc.people.model import ApiKeyRecord
from rulesvc.storage.bulk import Statements
from rulesvc.storage.decision_search import search_decisions, term_counts
from rulesvc.storage.decision_writes import (
    chain,
    chain_entry,
    chain_head,
    lock_chain_head,
    prepare_decisions,
    raise_watermark,
    select_decisions,
    select_latest_facts,
    stored_decision,
    stored_decisions,
    write_entries,
    write_prepared,
)
from rulesvc.storage.engine import writer
from rulesvc.storage.group_commit import GroupCommitter
from rulesvc.storage.inputs import checked_input, clear_input
from rulesvc.storage.people_store import SqlPeopleStore
from rulesvc.storage.report_reads import late_fires, ticket_report, timers_due
from rulesvc.storage.report_rollups import RULES, midnight, rolled_days, rolled_span, rolled_until, split
from rulesvc.storage.report_rollups import term_counts as rolled_term_counts
from rulesvc.storage.report_rollups import ticket_report as rolled_ticket_report
from rulesvc.storage.tables import (
    ActionRow,
    AuditHeadRow,
    AuditRow,
    DecisionInputRow,
    DecisionRow,
)
from rulesvc.storage.ticket_rows import TicketBatch

_BATCH = 500


class SqlStore:
    """Implements `DecisionStore` and `KeyStore` on one SQLAlchemy engine."""

    def __init__(
        self, engine: Engine, *, group_commit: bool = True, max_batch: int = 64, rollups: bool = True
    ) -> None:
        """With `group_commit`, concurrent `append_decision` calls of this process share transactions; with
        `rollups`, the reports read the closed days of their periods from per-day roll-ups (PostgreSQL)."""
        self.engine = engine
        self.rollups = rollups and engine.dialect.name == "postgresql"
        """Read the reports from roll-ups (PostgreSQL only; the bench turns it off for its baseline)."""
        self.people = SqlPeopleStore(engine)
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=writer(engine), expire_on_commit=False)
        self._committer: GroupCommitter[NewDecision, tuple[StoredDecision, bool]] | None = (
            GroupCommitter(self.append_decisions, max_batch=max_batch, name="rulesvc-decisions")
            if group_commit
            else None
        )

    def close(self) -> None:
        """Stop the group-commit writer (pending appends are finished first)."""
        if self._committer is not None:
            self._committer.close()

    # -- decisions ----------------------------------------------------------------------------------------

    def get_decision(self, decision_id: str) -> StoredDecision | None:
        with self._read() as session:
            row = session.get(DecisionRow, decision_id)
            return stored_decision(row) if row else None

    def timers_due(
        self, now: datetime, until: datetime, late_after: timedelta, ruleset: str | None, group: str | None
    ) -> list[dict[str, Any]]:
        with self._read() as session:
            return timers_due(session, now, until, late_after, ruleset, group)

    def late_fires(
        self, start: datetime, end: datetime, late_after: timedelta, ruleset: str | None, group: str | None
    ) -> list[dict[str, Any]]:
        with self._read() as session:
            return late_fires(session, start, end, late_after, ruleset, group)

    def ticket_report(self, asked: TicketReport) -> dict[str, Any]:
        span = split(asked.start, asked.end, datetime.now(UTC), asked.tz) if self.rollups else None
        if span is not None:
            span = rolled_span(self.engine, asked, span)
        with self._read() as session:
            if span is None:
                return ticket_report(session, asked)
            return rolled_ticket_report(session, asked, span)

    def term_counts(self, terms: Sequence[str], start: datetime, end: datetime) -> dict[str, int]:
        days = rolled_days(start, end, datetime.now(UTC)) if self.rollups else None
        if days is not None:
            first, last = days
            last = rolled_until(self.engine, RULES, first, last)
            days = (first, last) if first < last else None
        with self._read() as session:
            if days is None:
                return term_counts(session, terms, start, end)
            first, last = days
            counts = rolled_term_counts(session, terms, first, last)
            for live in (
                term_counts(session, terms, start, midnight(first)),
                term_counts(session, terms, midnight(last), end),
            ):
                for term, n in live.items():
                    counts[term] = counts.get(term, 0) + n
            return counts

    def search_decisions(self, query: DecisionQuery) -> list[StoredDecision]:
        with self._read() as session:
            return search_decisions(session, query)

    def get_clear_input(self, decision_id: str) -> str | None:
        with self._read() as session:
            row = session.get(DecisionInputRow, decision_id)
            return clear_input(self.engine.pool, decision_id, row.event) if row else None

    def append_decision(self, new: NewDecision) -> tuple[StoredDecision, bool]:
        if self._committer is not None:
            return self._committer.submit(new)
        return self.append_decisions([new])[0]

    @property
    def commits_in_background(self) -> bool:
        """True when `append_decision_later` returns at once (group commit on)."""
        return self._committer is not None

    def append_decision_later(
        self,
        new: NewDecision,
        callback: Callable[[tuple[StoredDecision, bool] | None, BaseException | None], None],
    ) -> None:
        """`append_decision` whose result goes to `callback(result, error)`, called from the writer thread
        (or at once, on this thread, without group commit)."""
        if self._committer is not None:
            self._committer.submit_later(new, callback)
            return
        try:
            result = self.append_decisions([new])[0]
        except Exception as exc:
            callback(None, exc)
        else:
            callback(result, None)

    def append_decisions(self, news: Sequence[NewDecision]) -> list[tuple[StoredDecision, bool]]:
        """Store several decisions in one transaction; per item (stored, created?) as `append_decision`.

        An `event_id` already stored, or repeated within `news`, is not stored again: its item gets the
        decision stored first (created False), and the caller compares bodies.

        Decisions carrying `ticket_work` lock their tickets first (then the chain head: the timer poller
        takes locks in the same order) and store their timer changes and ticket snapshot with them.
        """
        for _ in range(_RACE_RETRIES):
            try:
                return self._append_decisions(news)
            except _RacedError:
                continue  # rolled back; the next attempt sees the twin that won, as a stored decision
        return self._append_decisions(news)

    def _append_decisions(self, news: Sequence[NewDecision]) -> list[tuple[StoredDecision, bool]]:
        # Three round trips (rulesvc.storage.bulk): lock the tickets and read their timers and any stored
        # twins; write the tickets' changes and lock the chain head; append. The chain head serializes
        # every writer of the service, so it is taken last and held only for the appends and the commit.
        with self._write() as session, session.begin():
            sql = Statements(session.connection())
            worked = [new for new in news if new.ticket_work is not None]
            ids = list(dict.fromkeys(new.event_id for new in news))
            with sql.round():
                tickets = TicketBatch(
                    sql, [n.ticket_id for n in worked], max((n.decided_at for n in worked), default=None)
                )
                stored = select_decisions(sql, ids)
            existing = stored_decisions(stored)
            fresh: dict[str, NewDecision] = {}
            for new in news:
                if new.event_id not in existing:
                    fresh.setdefault(new.event_id, new)
            try:
                final = [
                    tickets.run(new.ticket_id, new.ticket_work).decisions[0] if new.ticket_work else new
                    for new in fresh.values()
                ]
            except EvidenceError:
                # A ticket sealed by entries deleted from the chain's tail: the rolled-back chain is the
                # cause to report (`ChainRolledBackError`); otherwise the ticket's mismatch.
                with sql.round():
                    head = lock_chain_head(sql)
                chain_head(head)
                raise
            with sql.round():
                seals = tickets.write(sql)
                prepared = prepare_decisions(sql.pool, final, seals, tickets.now)  # before the lock
                head = lock_chain_head(sql)
                latest = select_latest_facts(sql, prepared)
                # A twin of the same event and ticket waited for the ticket lock and was seen above; only
                # a twin on another ticket (a conflicting body) can have committed since.
                raced = select_decisions(sql, list(fresh))
            if raced.all():
                raise _RacedError
            with sql.round():
                created, _ = write_prepared(sql, chain_head(head), prepared, latest)
            by_event = {**existing, **{stored.event_id: stored for stored in created}}
            results: list[tuple[StoredDecision, bool]] = []
            for new in news:
                first = fresh.get(new.event_id)
                results.append((by_event[new.event_id], first is new))
        if created:
            raise_watermark(self.engine.pool, created[-1].chain_seq)
        return results

    def list_actions(self, after: int, limit: int) -> list[FeedRecord]:
        with self._read() as session:
            rows = session.scalars(
                select(ActionRow).where(ActionRow.cursor > after).order_by(ActionRow.cursor).limit(limit)
            ).all()
            return [FeedRecord(r.cursor, r.at, r.ticket_id, r.decision_id, r.action) for r in rows]

    # -- audit chain --------------------------------------------------------------------------------------

    def append_audit(self, at: str, kind: str, subject: str, payload: Mapping[str, Any]) -> ChainEntry:
        with self._write() as session, session.begin():
            sql = Statements(session.connection())
            [entry] = chain(chain_head(lock_chain_head(sql)), [(at, kind, subject, payload)])
            write_entries(sql, [entry])
        raise_watermark(self.engine.pool, entry.seq)
        return entry

    def audit_entries(self, after: int = 0) -> Iterator[ChainEntry]:
        last = after
        while True:
            with self._read() as session:
                rows = session.scalars(
                    select(AuditRow).where(AuditRow.seq > last).order_by(AuditRow.seq).limit(_BATCH)
                ).all()
            if not rows:
                return
            for row in rows:
                yield chain_entry(row)
            last = rows[-1].seq

    def latest_audit_entries(self, kinds: Sequence[str], limit: int) -> list[ChainEntry]:
        with self._read() as session:
            rows = session.scalars(
                select(AuditRow)
                .where(AuditRow.kind.in_(list(kinds)))
                .order_by(AuditRow.seq.desc())
                .limit(limit)
            ).all()
            return [chain_entry(row) for row in rows]

    def chain_head(self) -> tuple[int, str]:
        with self._read() as session:
            head = session.get(AuditHeadRow, 1)
            if head is None:
                raise RuntimeError("audit_head row missing: the schema was not migrated")
            return head.seq, head.hash

    def decision_evidence(self) -> Iterator[DecisionEvidence]:
        last = 0
        while True:
            with self._read() as session:
                rows = session.execute(
                    select(AuditRow, DecisionRow, DecisionInputRow.event)
                    .outerjoin(DecisionRow, DecisionRow.decision_id == AuditRow.subject)
                    .outerjoin(DecisionInputRow, DecisionInputRow.decision_id == AuditRow.subject)
                    .where(AuditRow.kind == KIND_DECISION, AuditRow.seq > last)
                    .order_by(AuditRow.seq)
                    .limit(_BATCH)
                ).all()
            if not rows:
                return
            for audit, decision, clear in rows:
                yield DecisionEvidence(
                    entry=chain_entry(audit),
                    event_id=decision.event_id if decision else None,
                    ticket_id=decision.ticket_id if decision else None,
                    record_text=decision.record if decision else None,
                    input_salt=decision.input_salt if decision else None,
                    clear_input_text=checked_input(self.engine.pool, audit.subject, clear),
                )
            last = rows[-1][0].seq

    def unlogged_decisions(self) -> list[tuple[str, int]]:
        logged = select(AuditRow.subject).where(AuditRow.kind == KIND_DECISION)
        with self._read() as session:
            rows = session.execute(
                select(DecisionRow.decision_id, DecisionRow.chain_seq)
                .where(DecisionRow.decision_id.not_in(logged))
                .order_by(DecisionRow.chain_seq)
            ).all()
            return [(decision_id, seq) for decision_id, seq in rows]

    def raise_known_seq(self, seq: int) -> None:
        """A signed checkpoint vouches that the chain reached `seq`: a head found below it later is a
        rollback, and appends are refused."""
        raise_watermark(self.engine.pool, seq)

    def ping(self) -> datetime | None:
        """Reach the database; PostgreSQL answers with its server's clock (SQLite has none of its own)."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "postgresql":
                value = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
                return value if isinstance(value, datetime) else None
            conn.execute(text("SELECT 1"))
            return None

    # -- API keys (rows and their chain entries live with the people store) ---------------------------------

    def create_key(self, record: ApiKeyRecord, by: str = "system") -> None:
        self.people.add_key(record, by)

    def find_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return self.people.find_key_by_hash(key_hash)

    def list_keys(self) -> list[ApiKeyRecord]:
        return self.people.list_keys()

    def revoke_key(self, key_id: str, at: datetime, by: str = "system") -> bool:
        return self.people.revoke_key(key_id, at, by)

    def count_keys(self) -> int:
        return self.people.count_keys()


_RACE_RETRIES = 3


class _RacedError(Exception):
    """A decision for one of the batch's events was committed by another writer after the pre-check."""
