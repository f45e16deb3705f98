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

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, func, insert, select
from sqlalchemy.orm import sessionmaker

from rulesvc import exactjson
from rulesvc.audit.evidence import refuse
from rulesvc.decisions.ports import StoredDecision, TicketWrite
from rulesvc.decisions.timer_ports import ClaimPlan, FiredBatch, FirePrepare, ReplanBatch
from rulesvc.model import to_jsonable
from rulesvc.sla.reports import SlaRecord
from rulesvc.sla.ticket_timers import ScheduledTimer
from rulesvc.storage.bulk import Statements
from rulesvc.storage.decision_writes import (
    chain_head,
    insert_decisions,
    lock_chain_head,
    prepare_decisions,
    raise_watermark,
    write_prepared,
)
from rulesvc.storage.engine import writer
from rulesvc.storage.ticket_rows import (
    US,
    Loaded,
    LockedTicket,
    apply_writes,
    planned_before,
    postpone_refused,
    scheduled_timer,
    sealed_rows,
    select_seal_entries,
    select_timers,
    ticket_views,
    timer_values,
    view_of,
)
from rulesvc.storage.ticket_seals import state_digest
from rulesvc.storage.timer_tables import SlaResultRow, TicketRow, TimerRow

# A claim reads the locked tickets' columns (`LockedTicket`'s fields), no ORM objects.
LOCKED_COLUMNS = (
    TicketRow.ticket_id,
    TicketRow.kind,
    TicketRow.snapshot,
    TicketRow.group_name,
    TicketRow.updated_at,
    TicketRow.timeline,
    TicketRow.seal_seq,
)

# The timer columns a re-plan from the rows rewrites (with `updated_at`).
_REPLANNED = ("due_at", "next_fire_at", "next_point", "provisional", "calendar_version")
_TIMER_TABLE: Any = TimerRow.__table__


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

    def replan(self, calendar: str, version: int, now: datetime, limit: int, plan: ClaimPlan) -> ReplanBatch:
        """Up to `limit` tickets having an open timer on `calendar` planned on a version before `version`,
        locked (skipping locked ones) and re-planned by `plan` in one transaction: the timers each ticket's
        rows suffice for by one UPDATE for the claim, the others through their journal (`apply_writes`);
        one record for the claim with a feed row per moved timer, and one chain entry holding the record's
        digest and re-sealing every claimed ticket. Once stored, their timers are planned on `version`: a
        ticket is re-planned once, whoever claims it."""
        with self._write() as session, session.begin():
            claim = self.replan_statement(calendar, version, limit)
            tickets = [LockedTicket(*row) for row in session.execute(claim).all()]
            if not tickets:
                return ReplanBatch(0)
            sql = Statements(session.connection())
            ids = [t.ticket_id for t in tickets]
            with sql.round():
                timers = select_timers(sql, ids)
                entries = select_seal_entries(sql, ids)
            refused: list[Loaded] = []
            journaled: list[tuple[Loaded, TicketWrite]] = []
            updates: list[dict[str, Any]] = []
            seals: dict[str, str] = {}
            moves: list[tuple[str, Mapping[str, Any]]] = []
            for ticket, rows, digest, problem in sealed_rows(tickets, timers, entries):
                if problem is not None:
                    # never re-sealed: a forged state stays found out; its timers wait (and alert) again
                    refuse("tickets", ticket.ticket_id, problem)
                    refused.append(Loaded(ticket, view_of(ticket, rows, problem), rows, digest, problem))
                    continue
                planned = plan.timers(ticket.ticket_id, [scheduled_timer(row) for row in rows.values()])
                if planned is None:
                    loaded = Loaded(ticket, view_of(ticket, rows, None), rows, digest, None)
                    write, actions = plan.ticket(loaded.view)
                    journaled.append((loaded, write))
                else:
                    changed, actions = planned
                    after = dict(rows)
                    for timer in changed:
                        values = {column: getattr(timer, column) for column in _REPLANNED}
                        after[timer.name] = {**rows[timer.name], **values}
                        updates.append({**values, "updated_at": now, "id": rows[timer.name]["id"]})
                    seals[ticket.ticket_id] = state_digest(
                        ticket.ticket_id,
                        ticket.kind,
                        ticket.group_name,
                        ticket.snapshot,
                        ticket.timeline,
                        after.values(),
                    )
                moves.extend((ticket.ticket_id, action) for action in actions)
            usable = len(tickets) - len(refused)
            record = plan.record(moves, usable) if usable else None
            with sql.round():
                sql.update(_TIMER_TABLE, ["id"], updates)
                seals.update(apply_writes(sql, now, journaled))
                postpone_refused(sql, now, refused)
                prepared = (
                    prepare_decisions(sql.pool, [record] if record is not None else [], seals, now)
                    if record is not None or seals
                    else None
                )
                head = lock_chain_head(sql) if prepared is not None else None
            stored: list[StoredDecision] = []
            last_seq = 0
            with sql.round():
                if head is not None and prepared is not None:
                    stored, last_seq = write_prepared(sql, chain_head(head), prepared)
        raise_watermark(self.engine.pool, last_seq)
        return ReplanBatch(len(tickets), len(moves), [item.ticket.ticket_id for item in refused], stored)

    def replan_pending(self, calendar: str, version: int) -> bool:
        """Whether an open timer on `calendar` is still planned on a version before `version` (an index
        probe: every worker poll asks)."""
        with self._read() as session:
            found = session.scalar(select(TimerRow.id).where(*planned_before(calendar, version)).limit(1))
            return found is not None

    def replan_count(self, calendar: str, version: int) -> int:
        with self._read() as session:
            return int(
                session.scalar(
                    select(func.count()).select_from(TimerRow).where(*planned_before(calendar, version))
                )
                or 0
            )

    def replan_statement(
        self, calendar: str, version: int, limit: int
    ) -> Select[str, str, str, str, datetime, str, int | None]:
        stale = (
            select(TimerRow.ticket_id)
            .where(*planned_before(calendar, version))
            .limit(limit * _WINDOW)
            .subquery("stale_timers")
        )
        return (
            select(*LOCKED_COLUMNS)
            .where(TicketRow.ticket_id.in_(select(stale.c.ticket_id)))
            .limit(limit)
            .with_for_update(skip_locked=True, of=TicketRow)
        )

    def _claimed(
        self,
        claim: Select[str, str, str, str, datetime, str, int | None],
        now: datetime,
        prepare: FirePrepare,
    ) -> FiredBatch:
        with self._write() as session, session.begin():
            tickets = [LockedTicket(*row) for row in session.execute(claim).all()]
            if not tickets:
                return FiredBatch(0)
            sql = Statements(session.connection())
            ids = [t.ticket_id for t in tickets]
            with sql.round():
                timers = select_timers(sql, ids)
                entries = select_seal_entries(sql, ids)
            loaded = ticket_views(tickets, timers, entries)
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
                seals = apply_writes(sql, now, [(item, w) for item, w in zip(usable, writes, strict=True)])
                postpone_refused(sql, now, refused)
                # every row is built before the chain head is locked: events wait for it only while
                # the entries are hashed and the rows sent
                prepared = prepare_decisions(sql.pool, news, seals, now) if news or seals else None
                head = lock_chain_head(sql) if prepared is not None else None
            last_seq = 0
            with sql.round():
                if head is not None and prepared is not None:
                    stored, last_seq = write_prepared(sql, chain_head(head), prepared)
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
        timer_rows = [timer_values(t.state.ticket_id, t, now) for t in timers]
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

    def claim_statement(
        self, now: datetime, limit: int
    ) -> Select[str, str, str, str, datetime, str, int | None]:
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
            select(*LOCKED_COLUMNS)
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
