"""SQLAlchemy implementation of `TimerStore` (PostgreSQL and SQLite).

Locking protocol (why a poll never fires a point twice and never deadlocks with an event):
- every writer of a ticket's timers holds that ticket's row lock, and takes the chain-head lock last;
- an event waits for its ticket (`SELECT ... FOR UPDATE`); a poll never waits for a ticket: it locks
  tickets with due points `FOR UPDATE SKIP LOCKED`, so replicas split the due tickets between them and a
  ticket busy with an event is simply left for the next poll;
- the poll re-reads the locked tickets' timers after locking, so a point another replica fired and
  committed meanwhile is no longer due. Timer state, decisions, actions and chain entries commit together:
  a crash before the commit fires nothing, after it everything.
On SQLite (one writer) the write transaction is `BEGIN IMMEDIATE`, which serializes all of the above.

A poll reads the head of the partial index `ix_timers_next_fire_at` (`ORDER BY next_fire_at LIMIT n`), so
its cost depends on the batch size, not on the number of pending timers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import orjson
from sqlalchemy import Engine, Select, Table, func, insert, or_, select
from sqlalchemy.orm import sessionmaker

from rulesvc import exactjson
from rulesvc.audit.chain import ChainEntry
from rulesvc.audit.evidence import refuse
from rulesvc.decisions.ports import StoredDecision, TicketView, TicketWrite
from rulesvc.decisions.timer_ports import FiredBatch, FirePrepare
from rulesvc.events import normalise_value
from rulesvc.model import to_jsonable
from rulesvc.sla.outcomes import SlaOutcome
from rulesvc.sla.reports import SlaRecord
from rulesvc.sla.ticket_timers import ScheduledTimer
from rulesvc.sla.timers import PAUSED, RUNNING, TimerState
from rulesvc.storage.bulk import Rows, Statements
from rulesvc.storage.decision_writes import (
    AUDIT_COLUMNS,
    AUDIT_TABLE,
    chain_head,
    insert_decisions,
    lock_chain_head,
    raise_watermark,
)
from rulesvc.storage.engine import writer
from rulesvc.storage.tables import Base
from rulesvc.storage.ticket_seals import is_empty, seal_problem, state_digest
from rulesvc.storage.timer_tables import SlaResultRow, TicketRow, TimerRow

US = timedelta(microseconds=1)
# A poll looks at the tickets of the `limit * _WINDOW` earliest due timers, so that replicas polling at the
# same moment find different unlocked tickets instead of all queueing for the first `limit`.
_WINDOW = 4
_STREAM_BATCH = 2000


class SqlTimerStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=writer(engine), expire_on_commit=False)

    # -- units of work ------------------------------------------------------------------------------------

    def fire_due(self, now: datetime, limit: int, prepare: FirePrepare) -> FiredBatch:
        return self._claimed(self.claim_statement(now, limit), now, prepare)

    def replan(
        self, calendar: str, version: int, now: datetime, limit: int, prepare: FirePrepare
    ) -> FiredBatch:
        """Up to `limit` tickets having an open timer on `calendar` planned on a version before `version`,
        locked (skipping locked ones) and handed to `prepare` in one transaction, as `fire_due` does. Once
        prepared, their timers are planned on `version`: a ticket is re-planned once, whoever claims it."""
        return self._claimed(self.replan_statement(calendar, version, limit), now, prepare)

    def replan_pending(self, calendar: str, version: int) -> bool:
        """Whether an open timer on `calendar` is still planned on a version before `version` (an index
        probe: every worker poll asks)."""
        with self._read() as session:
            found = session.scalar(select(TimerRow.id).where(*_planned_before(calendar, version)).limit(1))
            return found is not None

    def replan_statement(self, calendar: str, version: int, limit: int) -> Select[TicketRow]:
        stale = (
            select(TimerRow.ticket_id)
            .where(*_planned_before(calendar, version))
            .limit(limit * _WINDOW)
            .subquery("stale_timers")
        )
        return (
            select(TicketRow)
            .where(TicketRow.ticket_id.in_(select(stale.c.ticket_id)))
            .limit(limit)
            .with_for_update(skip_locked=True, of=TicketRow)
        )

    def _claimed(self, claim: Select[TicketRow], now: datetime, prepare: FirePrepare) -> FiredBatch:
        with self._write() as session, session.begin():
            tickets = [_locked(row) for row in session.scalars(claim).all()]
            if not tickets:
                return FiredBatch(0)
            sql = Statements(session.connection())
            ids = [t.ticket_id for t in tickets]
            with sql.round():
                timers = select_timers(sql, ids)
                entries = select_seal_entries(sql, ids)
            loaded = _views(tickets, timers, entries)
            # A ticket whose stored state no longer matches its seal is not fired (its state is forged);
            # its due points are looked at again later, and the mismatch is an alert every time.
            refused = [item for item in loaded if item.problem is not None]
            for item in refused:
                assert item.problem is not None
                refuse("tickets", item.ticket.ticket_id, item.problem)
            usable = [item for item in loaded if item.problem is None]
            writes = [prepare(item.view) for item in usable]
            news = [decision for write in writes for decision in write.decisions]
            stored: list[StoredDecision] = []
            with sql.round():
                seals = _apply(sql, now, [(item, w) for item, w in zip(usable, writes, strict=True)])
                _postpone(sql, now, refused)
                head = lock_chain_head(sql) if news or seals else None
            last_seq = 0
            with sql.round():
                if head is not None:
                    stored, last_seq = insert_decisions(sql, chain_head(head), news, seals, now)
        raise_watermark(self.engine.pool, last_seq)
        actions = sum(len(d.actions) for d in news)
        return FiredBatch(len(tickets), stored, actions, writes, [item.ticket.ticket_id for item in refused])

    def import_timers(
        self,
        tickets: Sequence[tuple[str, str, Mapping[str, Any]]],
        timers: Sequence[ScheduledTimer],
        now: datetime,
    ) -> None:
        """Bulk-load tickets (id, kind, snapshot) and their timers, e.g. when migrating from another system
        (and for benchmarks); existing rows are not touched."""
        rows: list[dict[str, Any]] = [
            {
                "ticket_id": ticket_id,
                "kind": kind,
                "snapshot": exactjson.dumps(to_jsonable(dict(snapshot))),
                "group_name": "",
                "updated_at": now,
                "timeline": "{}",
            }
            for ticket_id, kind, snapshot in tickets
        ]
        timer_rows = [_timer_values(t.state.ticket_id, t, now) for t in timers]
        by_ticket: dict[str, list[dict[str, Any]]] = {}
        for row in timer_rows:
            by_ticket.setdefault(row["ticket_id"], []).append(row)
        seals = {
            row["ticket_id"]: state_digest(
                row["ticket_id"],
                row["kind"],
                row["group_name"],
                row["snapshot"],
                row["timeline"],
                by_ticket.get(row["ticket_id"], []),
            )
            for row in rows
        }
        with self._write() as session, session.begin():
            if rows:
                session.execute(insert(TicketRow), rows)
            if timer_rows:
                session.execute(insert(TimerRow), timer_rows)
            if seals:
                sql = Statements(session.connection())
                with sql.round():
                    head = lock_chain_head(sql)
                with sql.round():
                    _, last_seq = insert_decisions(sql, chain_head(head), [], seals, now)
        if seals:
            raise_watermark(self.engine.pool, last_seq)

    def claim_statement(self, now: datetime, limit: int) -> Select[TicketRow]:
        """Tickets having a timer point due at `now`, earliest point first, locked (skipping locked ones).

        The earliest `limit * _WINDOW` due points are read from the head of the index; ordering the tickets
        by their earliest point keeps the oldest first under sustained load (no ticket starves).
        """
        window = (
            select(TimerRow.ticket_id, TimerRow.next_fire_at)
            .where(TimerRow.next_fire_at.is_not(None), TimerRow.next_fire_at <= now)
            .order_by(TimerRow.next_fire_at)
            .limit(limit * _WINDOW)
            .subquery("due_window")
        )
        due = (
            select(window.c.ticket_id, func.min(window.c.next_fire_at).label("first_due"))
            .group_by(window.c.ticket_id)
            .subquery("due_tickets")
        )
        return (
            select(TicketRow)
            .join(due, due.c.ticket_id == TicketRow.ticket_id)
            .order_by(due.c.first_due)
            .limit(limit)
            .with_for_update(skip_locked=True, of=TicketRow)
        )

    def claim_plan(self, now: datetime, limit: int) -> str:
        """EXPLAIN of a poll's claim query (PostgreSQL; SQLite's EXPLAIN QUERY PLAN otherwise)."""
        statement = self.claim_statement(now, limit)
        with self.engine.connect() as conn:
            compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            prefix = "EXPLAIN" if conn.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
            rows = conn.exec_driver_sql(f"{prefix} {compiled}").all()
        return "\n".join(" ".join(str(v) for v in row) for row in rows)

    # -- reads --------------------------------------------------------------------------------------------

    def pending_timers(self) -> int:
        with self._read() as session:
            return int(
                session.scalar(
                    select(func.count()).select_from(TimerRow).where(TimerRow.next_fire_at.is_not(None))
                )
                or 0
            )

    def sla_records(self, start: datetime, end: datetime) -> Iterator[SlaRecord]:
        """SLA figures decided in [start, end), streamed."""
        last_id = 0
        while True:
            with self._read() as session:
                rows = session.scalars(
                    select(SlaResultRow)
                    .where(
                        SlaResultRow.decided_at >= start,
                        SlaResultRow.decided_at < end,
                        SlaResultRow.id > last_id,
                    )
                    .order_by(SlaResultRow.id)
                    .limit(_STREAM_BATCH)
                ).all()
            if not rows:
                return
            for row in rows:
                yield SlaRecord(
                    ticket_id=row.ticket_id,
                    kind=row.kind,
                    timer=row.timer,
                    ruleset=row.ruleset,
                    rule=row.rule,
                    calendar=row.calendar,
                    group=row.group_name,
                    started_at=row.started_at,
                    due_at=row.due_at,
                    outcome=row.outcome,
                    decided_at=row.decided_at,
                    stopped_at=row.stopped_at,
                    remaining=row.remaining_us * US,
                    breach=row.breach_us * US,
                    provisional=bool(row.provisional),
                )
            last_id = rows[-1].id

    # -- helpers ------------------------------------------------------------------------------------------


class TicketBatch:
    """The tickets of a group of event decisions stored in one transaction, locked in ticket id order.

    Creating it issues the locking statements (and the read of the tickets' timers) in the caller's current
    round; `run` calls a unit of work with the ticket's current view and advances the view, so several
    decisions for one ticket in one batch see each other's changes; `write` issues the net changes per
    ticket. Lock order: these tickets (waiting for them), then the chain head.
    """

    def __init__(self, sql: Statements, ticket_ids: Iterable[str], now: datetime | None) -> None:
        """`now` (when the rows are updated) may be None only without tickets."""
        self.now = now
        wanted = sorted(set(ticket_ids))
        if wanted and now is None:
            raise ValueError("a ticket batch with tickets needs the time of its writes")
        self._locked = lock_tickets(sql, wanted, now) if now is not None else None
        self._timers = select_timers(sql, wanted)
        self._entries = select_seal_entries(sql, wanted)
        self._items: dict[str, Loaded] = {}
        self._views: dict[str, TicketView] = {}
        self._loaded = False
        self._writes: dict[str, list[TicketWrite]] = {}

    def _load(self) -> None:
        """Read what the locking round returned (after that round)."""
        if self._loaded:
            return
        self._loaded = True
        locked = [LockedTicket(*row) for row in self._locked.all()] if self._locked is not None else []
        for item in _views(locked, self._timers, self._entries):
            self._items[item.ticket.ticket_id] = item
            self._views[item.ticket.ticket_id] = item.view

    def run(self, ticket_id: str, work: Callable[[TicketView], TicketWrite]) -> TicketWrite:
        """Raises `EvidenceError` (and logs the alert) when the ticket's stored state is not what the chain
        sealed: nothing is decided on forged state."""
        self._load()
        problem = self._items[ticket_id].problem
        if problem is not None:
            raise refuse("tickets", ticket_id, problem)
        view = self._views[ticket_id]
        write = work(view)
        self._writes.setdefault(ticket_id, []).append(write)
        self._views[ticket_id] = _advance(view, write)
        return write

    def write(self, sql: Statements) -> dict[str, str]:
        """Issue the net changes; returns the digest of each ticket whose sealed state changed (to seal)."""
        if not self._writes or self.now is None:
            return {}
        return _apply(
            sql,
            self.now,
            [(self._items[tid], _merge(writes)) for tid, writes in self._writes.items()],
        )


@dataclass(frozen=True)
class LockedTicket:
    """A ticket row as read under its lock (the writes of a batch go out as one UPDATE per table)."""

    ticket_id: str
    kind: str
    snapshot: str
    group_name: str
    updated_at: datetime
    timeline: str
    seal_seq: int | None


@dataclass(frozen=True)
class Loaded:
    """A locked ticket, its view, its timer rows by name (column → value as stored), the digest of its
    stored state and why that state does not match its seal (None: it does)."""

    ticket: LockedTicket
    view: TicketView
    rows: Mapping[str, Mapping[str, Any]]
    digest: str
    problem: tuple[str, str] | None


def _planned_before(calendar: str, version: int) -> tuple[Any, ...]:
    """Open timers on `calendar` planned on an earlier version (or before versions were recorded)."""
    return (
        TimerRow.calendar == calendar,
        or_(TimerRow.calendar_version.is_(None), TimerRow.calendar_version < version),
        TimerRow.status.in_((RUNNING, PAUSED)),
    )


def _locked(row: TicketRow) -> LockedTicket:
    return LockedTicket(
        row.ticket_id, row.kind, row.snapshot, row.group_name, row.updated_at, row.timeline, row.seal_seq
    )


def lock_tickets(sql: Statements, ticket_ids: Sequence[str], now: datetime) -> Rows:
    """Create missing ticket rows and lock all of them, in ticket id order, in one statement (an upsert that
    locks: concurrent batches always lock in the same order, so they cannot deadlock). Rows are
    `LockedTicket` fields."""
    ids = sorted(set(ticket_ids))
    return sql.insert_or_lock(
        _TICKETS,
        "ticket_id",
        [
            {
                "ticket_id": t,
                "kind": "",
                "snapshot": "{}",
                "group_name": "",
                "updated_at": now,
                "timeline": "{}",
            }
            for t in ids
        ],
        _LOCKED_COLUMNS,
    )


def select_seal_entries(sql: Statements, ticket_ids: Sequence[str]) -> Rows:
    """The chain entries these tickets' `seal_seq` point at (issue it after, or in the same round as, the
    tickets' locks); rows are `AUDIT_COLUMNS`."""
    return sql.select_referenced(
        AUDIT_TABLE, AUDIT_COLUMNS, "seq", _TICKETS, "seal_seq", "ticket_id", ticket_ids
    )


def select_timers(sql: Statements, ticket_ids: Sequence[str]) -> Rows:
    """Every timer of these tickets (issue it after, or in the same round as, the tickets' locks)."""
    return sql.select(_TIMERS, _TIMER_COLUMNS, "ticket_id", list(ticket_ids))


def _advance(view: TicketView, write: TicketWrite) -> TicketView:
    """The view after `write` (for the next unit of work on the same ticket in the same transaction)."""
    changed = {timer.name: timer for timer in write.timers}
    timers = tuple(changed.pop(t.name, t) for t in view.timers) + tuple(changed.values())
    return TicketView(
        ticket_id=view.ticket_id,
        kind=write.kind or view.kind,
        snapshot=write.snapshot if write.snapshot is not None else view.snapshot,
        group=write.group if write.group is not None else view.group,
        timers=timers,
        timeline=write.timeline if write.timeline is not None else view.timeline,
    )


def _merge(writes: Sequence[TicketWrite]) -> TicketWrite:
    """The net effect of several writes on one ticket (decisions are stored by the caller)."""
    if len(writes) == 1:
        return writes[0]
    timers: dict[str, ScheduledTimer] = {}
    snapshot: Mapping[str, Any] | None = None
    timeline: Mapping[str, Any] | None = None
    kind: str | None = None
    group: str | None = None
    inserts: dict[tuple[str, int], SlaOutcome] = {}
    updates: dict[tuple[str, int], SlaOutcome] = {}
    deletes: set[tuple[str, int]] = set()
    for write in writes:
        timers.update((timer.name, timer) for timer in write.timers)
        snapshot = write.snapshot if write.snapshot is not None else snapshot
        timeline = write.timeline if write.timeline is not None else timeline
        kind = write.kind or kind
        group = write.group if write.group is not None else group
        for key in write.sla_deletes:
            if inserts.pop(key, None) is None:  # stored before this batch
                updates.pop(key, None)
                deletes.add(key)
        for outcome in write.sla:
            key = (outcome.timer, outcome.generation)
            if key in deletes:  # deleted earlier in this batch: the stored row is rewritten
                deletes.discard(key)
                updates[key] = outcome
            else:
                inserts[key] = outcome
        for outcome in write.sla_updates:
            key = (outcome.timer, outcome.generation)
            (inserts if key in inserts else updates)[key] = outcome
    return TicketWrite(
        (),
        snapshot,
        kind,
        group,
        list(timers.values()),
        list(inserts.values()),
        list(updates.values()),
        sorted(deletes),
        timeline,
    )


def _views(tickets: Iterable[LockedTicket], timers: Rows, entries: Rows) -> list[Loaded]:
    """Views of locked tickets (with every timer), each checked against the chain entry sealing it."""
    tickets = list(tickets)
    by_ticket: dict[str, list[dict[str, Any]]] = {t.ticket_id: [] for t in tickets}
    for values in timers.all():
        row = dict(zip(_TIMER_COLUMNS, values, strict=True))
        by_ticket[row["ticket_id"]].append(row)
    sealing = {entry[0]: ChainEntry(*entry) for entry in entries.all()}
    result = []
    for ticket in tickets:
        rows = by_ticket[ticket.ticket_id]
        digest = state_digest(
            ticket.ticket_id, ticket.kind, ticket.group_name, ticket.snapshot, ticket.timeline, rows
        )
        empty = is_empty(ticket.kind, ticket.snapshot, ticket.timeline, rows)
        entry = sealing.get(ticket.seal_seq) if ticket.seal_seq is not None else None
        problem = seal_problem(ticket.ticket_id, digest, empty, ticket.seal_seq, entry)
        view = TicketView(
            ticket_id=ticket.ticket_id,
            kind=ticket.kind,
            snapshot=normalise_value(exactjson.loads(ticket.snapshot)) if problem is None else {},
            group=ticket.group_name,
            timers=tuple(_scheduled(SimpleNamespace(**row)) for row in rows) if problem is None else (),
            timeline=orjson.loads(ticket.timeline or "{}") if problem is None else {},
        )
        result.append(Loaded(ticket, view, {row["name"]: row for row in rows}, digest, problem))
    return result


def _postpone(sql: Statements, now: datetime, refused: Iterable[Loaded]) -> None:
    """Move the due points of tickets refused for a seal mismatch to `_REFUSED_RETRY` from now (only the
    unsealed `next_fire_at`: the forged state itself is left as found, for the investigation)."""
    later = now + _REFUSED_RETRY
    sql.update(
        _TIMERS,
        ["id"],
        [
            {"next_fire_at": later, "id": row["id"]}
            for item in refused
            for row in item.rows.values()
            if row["next_fire_at"] is not None and row["next_fire_at"] <= now
        ],
    )


def _apply(sql: Statements, now: datetime, items: Iterable[tuple[Loaded, TicketWrite]]) -> dict[str, str]:
    """Write the tickets', timers' and SLA figures' changes of a batch (a few statements for all of it);
    returns the new digest of each ticket whose sealed state changed, or that was never sealed."""
    tickets: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    changed_results: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    seals: dict[str, str] = {}
    for item, write in items:
        ticket, view, stored = item.ticket, item.view, item.rows
        timer_rows = {name: dict(row) for name, row in stored.items()}
        changed = {
            "snapshot": ticket.snapshot,
            "kind": ticket.kind,
            "group_name": ticket.group_name,
            "updated_at": ticket.updated_at,
            "timeline": ticket.timeline,
        }
        if write.snapshot is not None:
            changed["snapshot"] = exactjson.dumps(to_jsonable(dict(write.snapshot)))
            changed["updated_at"] = now
        if write.timeline is not None:
            changed["timeline"] = orjson.dumps(write.timeline).decode("utf-8")
        if write.kind:
            changed["kind"] = write.kind
        if write.group is not None:
            changed["group_name"] = write.group
        if any(changed[k] != getattr(ticket, k) for k in changed):
            tickets.append({**changed, "ticket_id": ticket.ticket_id})
        for timer in write.timers:
            values = _timer_values(view.ticket_id, timer, now)
            timer_rows[timer.name] = values
            if timer.name in stored:
                updates.append({**values, "id": stored[timer.name]["id"]})
            else:
                inserts.append(values)
        digest = state_digest(
            ticket.ticket_id,
            str(changed["kind"]),
            str(changed["group_name"]),
            str(changed["snapshot"]),
            str(changed["timeline"]),
            timer_rows.values(),
        )
        if digest != item.digest or ticket.seal_seq is None:
            seals[ticket.ticket_id] = digest
        kind = write.kind or view.kind
        group = write.group if write.group is not None else view.group
        results.extend(_sla_values(o, kind, group) for o in write.sla)
        changed_results.extend(_sla_update(o) for o in write.sla_updates)
        removed.extend(
            {"ticket_id": view.ticket_id, "timer": timer, "generation": generation}
            for timer, generation in write.sla_deletes
        )
    sla = _table(SlaResultRow)
    sql.update(_TICKETS, ["ticket_id"], tickets)
    sql.update(_TIMERS, ["id"], updates)
    sql.insert(_TIMERS, inserts)
    sql.delete(sla, _SLA_KEY, removed)
    sql.insert(sla, results)
    sql.update(sla, _SLA_KEY, changed_results)
    return seals


def _table(mapped: type[Base]) -> Table:
    return cast(Table, mapped.__table__)


_TICKETS = _table(TicketRow)
_TIMERS = _table(TimerRow)
_LOCKED_COLUMNS = ("ticket_id", "kind", "snapshot", "group_name", "updated_at", "timeline", "seal_seq")
_REFUSED_RETRY = timedelta(minutes=1)
_TIMER_COLUMNS = tuple(column.name for column in _TIMERS.c)


def _timer_values(ticket_id: str, timer: ScheduledTimer, now: datetime) -> dict[str, Any]:
    state = timer.state
    return {
        "ticket_id": ticket_id,
        "name": state.name,
        "generation": timer.generation,
        "calendar": state.calendar,
        "rule": state.rule,
        "status": state.status,
        "started_at": state.started_at,
        "duration_us": state.duration // US,
        "warnings": orjson.dumps([[name, offset // US] for name, offset in state.warnings]).decode(),
        "anchor_at": state.anchor_at,
        "consumed_us": state.consumed // US,
        "remaining_us": (state.duration - state.consumed) // US if state.status == PAUSED else None,
        "fired": orjson.dumps(sorted(state.fired)).decode(),
        "due_at": timer.due_at,
        "next_fire_at": timer.next_fire_at,
        "next_point": timer.next_point,
        "stopped_at": timer.stopped_at,
        "updated_at": now,
        "provisional": timer.provisional,
        "calendar_version": timer.calendar_version,
    }


def _scheduled(row: Any) -> ScheduledTimer:
    """The timer of a `timers` row (an ORM object or a Core row: the same attribute names)."""
    state = TimerState(
        ticket_id=row.ticket_id,
        name=row.name,
        calendar=row.calendar,
        started_at=row.started_at,
        duration=row.duration_us * US,
        warnings=tuple((str(name), int(us) * US) for name, us in orjson.loads(row.warnings)),
        anchor_at=row.anchor_at,
        consumed=row.consumed_us * US,
        status=row.status,
        fired=frozenset(orjson.loads(row.fired)),
        rule=row.rule,
    )
    return ScheduledTimer(
        state,
        row.generation,
        row.next_fire_at,
        row.next_point,
        row.due_at,
        row.stopped_at,
        bool(row.provisional),
        row.calendar_version,
    )


_SLA_KEY = ("ticket_id", "timer", "generation")


def _sla_update(outcome: SlaOutcome) -> dict[str, Any]:
    """A stored figure rewritten (corrected by a late event, or a breach closed)."""
    return {
        "due_at": outcome.due_at,
        "outcome": outcome.outcome,
        "decided_at": outcome.decided_at,
        "stopped_at": outcome.stopped_at,
        "remaining_us": outcome.remaining // US,
        "breach_us": outcome.breach // US,
        "provisional": outcome.provisional,
        "ticket_id": outcome.ticket_id,
        "timer": outcome.timer,
        "generation": outcome.generation,
    }


def _sla_values(outcome: SlaOutcome, kind: str, group: str) -> dict[str, Any]:
    return {
        "ticket_id": outcome.ticket_id,
        "kind": kind,
        "timer": outcome.timer,
        "generation": outcome.generation,
        "ruleset": outcome.ruleset,
        "rule": outcome.rule,
        "calendar": outcome.calendar,
        "group_name": group,
        "started_at": outcome.started_at,
        "due_at": outcome.due_at,
        "outcome": outcome.outcome,
        "decided_at": outcome.decided_at,
        "stopped_at": outcome.stopped_at,
        "remaining_us": outcome.remaining // US,
        "breach_us": outcome.breach // US,
        "provisional": outcome.provisional,
    }
