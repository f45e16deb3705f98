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
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine, Select, func, insert, select, union_all
from sqlalchemy.orm import sessionmaker

from rulesvc import exactjson
from rulesvc.audit.chain import ChainEntry
from rulesvc.audit.evidence import refuse
from rulesvc.decisions.ports import StoredDecision, TicketWrite
from rulesvc.decisions.timer_ports import ClaimPlan, FiredBatch, FirePrepare, ReplanBatch
from rulesvc.model import to_jsonable
from rulesvc.sla.reports import SlaRecord
from rulesvc.sla.ticket_timers import ScheduledTimer
from rulesvc.sla.timers import PAUSED, RUNNING
from rulesvc.storage.bulk import Rows, Statements
from rulesvc.storage.decision_writes import (
    append_prepared,
    appended,
    chain_head,
    insert_decisions,
    lock_chain_head,
    prepare_decisions,
    raise_watermark,
    write_prepared,
)
from rulesvc.storage.engine import writer
from rulesvc.storage.ticket_rows import (
    TIMER_COLUMNS,
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
from rulesvc.storage.ticket_seals import entry_hash_sql, replan_digests_sql, sealed_tickets, state_digest
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


class _ReplanClaim:
    """What one re-plan claim stores, ticket by ticket (`SqlTimerStore.replan`)."""

    def __init__(self, calendar: str, version: int, now: datetime, plan: ClaimPlan) -> None:
        self.calendar = calendar
        self.version = version
        self.now = now
        self.plan = plan
        self.refused: list[Loaded] = []
        self.journaled: list[tuple[Loaded, TicketWrite]] = []
        self.updates: list[dict[str, Any]] = []
        self.seals: dict[str, str] = {}
        self.moves: list[tuple[str, Mapping[str, Any]]] = []
        # timer rows but for their ids → (name → re-planned columns, actions), or None (journal needed)
        self._planned: dict[tuple[Any, ...], _Planned | None] = {}

    def _plan(self, ticket_id: str, rows: list[tuple[Any, ...]]) -> _Planned | None:
        """The plan of a ticket's timer rows (sorted by name), from the rows alone; None: its journal."""
        key = tuple(_SHAPE(row) for row in rows)
        if key in self._planned:
            found = self._planned[key]
            if found is not None:
                self.plan.again(ticket_id, found[1])
            return found
        planned = self.plan.timers(
            ticket_id, [scheduled_timer(dict(zip(TIMER_COLUMNS, row, strict=True))) for row in rows]
        )
        found = None
        if planned is not None:
            changed, actions = planned
            found = ({t.name: {c: getattr(t, c) for c in _REPLANNED} for t in changed}, actions)
        self._planned[key] = found
        return found

    def _store(self, ticket_id: str, rows: Sequence[Any], planned: _Planned) -> None:
        changes, actions = planned
        for row in rows:
            values = changes.get(row[_NAME])
            if values is not None:
                self.updates.append({**values, "updated_at": self.now, "id": row[_ID]})
        self.moves.extend((ticket_id, action) for action in actions)

    def from_digests(
        self,
        digests: Sequence[tuple[Any, ...]],
        entries: Sequence[tuple[Any, ...]],
        timers: Mapping[str, list[tuple[Any, ...]]],
    ) -> list[str]:
        """Re-plan the tickets whose state digest (computed by the server) is the one their seal entry
        (whose hash the server recomputed) holds, from their rows; returns the others, to be read and
        checked in Python (a mismatch, a missing seal, a journal to replay)."""
        checked: dict[int, dict[str, str] | None] = {}
        for *entry, hash_ok in entries:
            try:
                sealed = sealed_tickets(ChainEntry(*entry)) if hash_ok else None
            except ValueError:
                sealed = None
            checked[entry[0]] = sealed
        slow: list[str] = []
        for ticket_id, seal_seq, digest, replanned in digests:
            sealed = checked.get(seal_seq) if seal_seq is not None else None
            rows = timers[ticket_id]
            rows.sort(key=_BY_NAME)
            planned = (
                self._plan(ticket_id, rows)
                if sealed is not None and sealed.get(ticket_id) == digest
                else None
            )
            if planned is None or not self._as_digested(rows, planned[0]):
                slow.append(ticket_id)
                continue
            self._store(ticket_id, rows, planned)
            self.seals[ticket_id] = replanned
        return slow

    def _as_digested(self, rows: Sequence[Any], changes: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether the server's digest of the re-planned state is that of `changes`: they move exactly the
        timers it moved, to this claim's version (`_REPLAN_DIGESTS`)."""
        moved = {
            row[_NAME]
            for row in rows
            if row[_CALENDAR] == self.calendar
            and row[_STATUS] in (RUNNING, PAUSED)
            and (row[_VERSION] or 0) < self.version
        }
        return moved == changes.keys() and all(
            v["calendar_version"] == self.version for v in changes.values()
        )

    def from_state(
        self,
        sql: Statements,
        tickets: Sequence[LockedTicket],
        timers: Mapping[str, list[tuple[Any, ...]]],
        entries: Rows,
    ) -> None:
        """Re-plan tickets read whole: their state checked against their seal in Python, planned from their
        rows or else through their journal, their new seals computed here."""
        rows = Rows.of([row for ticket in tickets for row in timers[ticket.ticket_id]])
        for ticket, by_name, digest, problem in sealed_rows(tickets, rows, entries):
            if problem is not None:
                # never re-sealed: a forged state stays found out; its timers wait (and alert) again
                refuse("tickets", ticket.ticket_id, problem)
                self.refused.append(
                    Loaded(ticket, view_of(ticket, by_name, problem), by_name, digest, problem)
                )
                continue
            ordered = sorted((tuple(row.values()) for row in by_name.values()), key=_BY_NAME)
            planned = self._plan(ticket.ticket_id, ordered)
            if planned is None:
                loaded = Loaded(ticket, view_of(ticket, by_name, None), by_name, digest, None)
                write, actions = self.plan.ticket(loaded.view)
                self.journaled.append((loaded, write))
                self.moves.extend((ticket.ticket_id, action) for action in actions)
                continue
            self._store(ticket.ticket_id, ordered, planned)
            after = [{**row, **planned[0].get(name, {})} for name, row in by_name.items()]
            self.seals[ticket.ticket_id] = state_digest(
                ticket.ticket_id, ticket.kind, ticket.group_name, ticket.snapshot, ticket.timeline, after
            )


_Planned = tuple[dict[str, dict[str, Any]], list[Mapping[str, Any]]]
_ID = TIMER_COLUMNS.index("id")
_TICKET = TIMER_COLUMNS.index("ticket_id")
_NAME = TIMER_COLUMNS.index("name")
_CALENDAR = TIMER_COLUMNS.index("calendar")
_STATUS = TIMER_COLUMNS.index("status")
_VERSION = TIMER_COLUMNS.index("calendar_version")
_BY_NAME = itemgetter(_NAME)
# what planning reads of a timer row: all but its id, ticket and write time
_SHAPE = itemgetter(*(i for i, c in enumerate(TIMER_COLUMNS) if c not in ("id", "ticket_id", "updated_at")))
_MOVED = (
    f"m.calendar = %(calendar)s AND m.status IN ('{RUNNING}', '{PAUSED}')"
    " AND coalesce(m.calendar_version, 0) < %(version)s"
)
_REPLAN_DIGESTS = replan_digests_sql(_MOVED)
# The claim on PostgreSQL: the stale timers read by the `(calendar, calendar_version)` index, the versioned
# ones in its order and the unversioned apart (an `OR` of both made PostgreSQL scan the table from its start,
# past every row the claims before moved), their tickets looked up by key from an array of ids (as
# `IN (subquery)` PostgreSQL hashed them and scanned every ticket), locked skipping locked ones.
_STALE = f"SELECT ticket_id FROM timers WHERE calendar = %(calendar)s AND status IN ('{RUNNING}', '{PAUSED}')"
_CLAIM = (
    "SELECT t.ticket_id, t.seal_seq FROM tickets t WHERE t.ticket_id = ANY(ARRAY("
    f"({_STALE} AND calendar_version < %(version)s ORDER BY calendar_version LIMIT %(window)s)"
    f" UNION ALL ({_STALE} AND calendar_version IS NULL LIMIT %(window)s)"
    ")) LIMIT %(limit)s FOR UPDATE OF t SKIP LOCKED"
)
_SEAL_ENTRIES_CHECKED = (
    f"SELECT a.seq, a.at, a.kind, a.subject, a.payload, a.prev_hash, a.hash, {entry_hash_sql('a')}"
    " FROM audit_log a WHERE a.seq IN (SELECT seal_seq FROM tickets WHERE ticket_id = ANY(%(ids)b::text[]))"
)
_TICKET_TABLE: Any = TicketRow.__table__
LOCKED_NAMES = tuple(column.name for column in LOCKED_COLUMNS)


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
        ticket is re-planned once, whoever claims it.

        On PostgreSQL the claim reads of each ticket only its key and timers: the server computes the
        digests sealing needs and checks the seal entries' hashes (`replan_digests_sql`), and a ticket's
        state is read and checked in Python only when these do not agree with its seal (or its journal is
        needed). Tickets with the same timer rows (but for ids) are planned once per claim."""
        pg = self.engine.dialect.name == "postgresql"
        with self._write() as session, session.begin():
            locked: Sequence[Any]
            if pg:  # one statement text for every claim (building it costs more than running it)
                claim = {"calendar": calendar, "version": version, "limit": limit, "window": limit * _WINDOW}
                locked = Statements(session.connection()).query(_CLAIM, claim).all()
            else:
                locked = session.execute(self.replan_statement(calendar, version, limit)).all()
            if not locked:
                return ReplanBatch(0)
            sql = Statements(session.connection())
            ids = [row[0] for row in locked]
            with sql.round():
                timers = select_timers(sql, ids)
                if pg:
                    params = {"ids": ids, "calendar": calendar, "version": version}
                    digests = sql.query(_REPLAN_DIGESTS, params)
                    entries = sql.query(_SEAL_ENTRIES_CHECKED, params)
            by_ticket: dict[str, list[tuple[Any, ...]]] = {ticket_id: [] for ticket_id in ids}
            for row in timers.all():
                by_ticket[row[_TICKET]].append(row)
            work = _ReplanClaim(calendar, version, now, plan)
            if pg:
                slow = work.from_digests(digests.all(), entries.all(), by_ticket)
                if slow:  # read and check these in Python
                    with sql.round():
                        rows = sql.select(_TICKET_TABLE, LOCKED_NAMES, "ticket_id", slow)
                        entries = select_seal_entries(sql, slow)
                    tickets = [LockedTicket(*row) for row in rows.all()]
            else:
                tickets = [LockedTicket(*row) for row in locked]
                entries = select_seal_entries(sql, ids)
            if not pg or slow:
                work.from_state(sql, tickets, by_ticket, entries)
            usable = len(ids) - len(work.refused)
            record = plan.record(work.moves, usable) if usable else None
            with sql.round():
                sql.update(_TIMER_TABLE, ["id"], work.updates)
                work.seals.update(apply_writes(sql, now, work.journaled))
                postpone_refused(sql, now, work.refused)
                prepared = (
                    prepare_decisions(sql.pool, [record] if record is not None else [], work.seals, now)
                    if record is not None or work.seals
                    else None
                )
                # on PostgreSQL the claim's entry is chained by the server in this round: the chain head is
                # held for this round's end and the commit only
                one = append_prepared(sql, prepared) if prepared is not None else None
                head = lock_chain_head(sql) if prepared is not None and one is None else None
            stored: list[StoredDecision] = []
            last_seq = 0
            if one is not None and prepared is not None:
                stored, last_seq = appended(one, prepared)
            elif head is not None and prepared is not None:
                with sql.round():
                    stored, last_seq = write_prepared(sql, chain_head(head), prepared)
        raise_watermark(self.engine.pool, last_seq)
        refused = [item.ticket.ticket_id for item in work.refused]
        return ReplanBatch(len(ids), len(work.moves), refused, stored)

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
        """The claim on SQLite (PostgreSQL's: `_CLAIM`): up to `limit` tickets among those of the first
        `limit * _WINDOW` stale timers, locked skipping locked ones, `LockedTicket`'s columns. The stale
        timers are read by the `(calendar, calendar_version)` index, the versioned ones in its order and the
        unversioned apart (as `_CLAIM`)."""
        window = limit * _WINDOW
        open_timer = (TimerRow.calendar == calendar, TimerRow.status.in_((RUNNING, PAUSED)))
        older = (
            select(TimerRow.ticket_id)
            .where(*open_timer, TimerRow.calendar_version < version)
            .order_by(TimerRow.calendar_version)
            .limit(window)
            .subquery("older")
        )
        unversioned = (
            select(TimerRow.ticket_id)
            .where(*open_timer, TimerRow.calendar_version.is_(None))
            .limit(window)
            .subquery("unversioned")
        )
        stale = union_all(select(older.c.ticket_id), select(unversioned.c.ticket_id)).subquery("stale")
        wanted = TicketRow.ticket_id.in_(select(stale.c.ticket_id))
        return (
            select(*LOCKED_COLUMNS).where(wanted).limit(limit).with_for_update(skip_locked=True, of=TicketRow)
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
