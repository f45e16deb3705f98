"""The unit of work on locked tickets, as rows: lock the tickets (ticket id order), read their timers and
seal entries, hand each ticket's view to a pure callback, and write what it returns (timers, snapshot,
timeline, SLA figures) in the caller's transaction. Shared by event decisions (`TicketBatch`) and timer
firing (`rulesvc.storage.timer_store`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import orjson
from sqlalchemy import Table, or_

from rulesvc import exactjson
from rulesvc.audit.chain import ChainEntry
from rulesvc.audit.evidence import refuse
from rulesvc.decisions.ports import TicketView, TicketWrite
from rulesvc.events import normalise_value
from rulesvc.model import to_jsonable
from rulesvc.sla.outcomes import SlaOutcome
from rulesvc.sla.ticket_timers import ScheduledTimer
from rulesvc.sla.timers import PAUSED, RUNNING, TimerState
from rulesvc.storage.bulk import Rows, Statements
from rulesvc.storage.decision_writes import (
    AUDIT_COLUMNS,
    AUDIT_TABLE,
)
from rulesvc.storage.tables import Base
from rulesvc.storage.ticket_seals import SealChecks, is_empty, seal_problem, state_digest
from rulesvc.storage.timer_tables import SlaResultRow, TicketRow, TimerRow

US = timedelta(microseconds=1)


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
        self.locked_ticket = lock_tickets(sql, wanted, now) if now is not None else None
        self._timers = select_timers(sql, wanted)
        self._entries = select_seal_entries(sql, wanted)
        self._items: dict[str, Loaded] = {}
        self.ticket_views: dict[str, TicketView] = {}
        self._loaded = False
        self._writes: dict[str, list[TicketWrite]] = {}

    def _load(self) -> None:
        """Read what the locking round returned (after that round)."""
        if self._loaded:
            return
        self._loaded = True
        locked = (
            [LockedTicket(*row) for row in self.locked_ticket.all()] if self.locked_ticket is not None else []
        )
        for item in ticket_views(locked, self._timers, self._entries):
            self._items[item.ticket.ticket_id] = item
            self.ticket_views[item.ticket.ticket_id] = item.view

    def run(self, ticket_id: str, work: Callable[[TicketView], TicketWrite]) -> TicketWrite:
        """Raises `EvidenceError` (and logs the alert) when the ticket's stored state is not what the chain
        sealed: nothing is decided on forged state."""
        self._load()
        problem = self._items[ticket_id].problem
        if problem is not None:
            raise refuse("tickets", ticket_id, problem)
        view = self.ticket_views[ticket_id]
        write = work(view)
        self._writes.setdefault(ticket_id, []).append(write)
        self.ticket_views[ticket_id] = _advance(view, write)
        return write

    def write(self, sql: Statements) -> dict[str, str]:
        """Issue the net changes; returns the digest of each ticket whose sealed state changed (to seal)."""
        if not self._writes or self.now is None:
            return {}
        return apply_writes(
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


def planned_before(calendar: str, version: int) -> tuple[Any, ...]:
    """Open timers on `calendar` planned on an earlier version (or before versions were recorded)."""
    return (
        TimerRow.calendar == calendar,
        or_(TimerRow.calendar_version.is_(None), TimerRow.calendar_version < version),
        TimerRow.status.in_((RUNNING, PAUSED)),
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


def ticket_views(tickets: Iterable[LockedTicket], timers: Rows, entries: Rows) -> list[Loaded]:
    """Views of locked tickets (with every timer), each checked against the chain entry sealing it."""
    return [
        Loaded(ticket, view_of(ticket, rows, problem), rows, digest, problem)
        for ticket, rows, digest, problem in sealed_rows(tickets, timers, entries)
    ]


def sealed_rows(
    tickets: Iterable[LockedTicket], timers: Rows, entries: Rows
) -> list[tuple[LockedTicket, dict[str, dict[str, Any]], str, tuple[str, str] | None]]:
    """(ticket, its timer rows by name, the digest of its stored state, why that state does not match
    its seal or None) of each locked ticket, nothing parsed (`view_of` does that)."""
    tickets = list(tickets)
    by_ticket: dict[str, list[dict[str, Any]]] = {t.ticket_id: [] for t in tickets}
    for values in timers.all():
        row = dict(zip(_TIMER_COLUMNS, values, strict=True))
        by_ticket[row["ticket_id"]].append(row)
    sealing = {entry[0]: ChainEntry(*entry) for entry in entries.all()}
    checks: SealChecks = {}
    result = []
    for ticket in tickets:
        rows = by_ticket[ticket.ticket_id]
        digest = state_digest(
            ticket.ticket_id, ticket.kind, ticket.group_name, ticket.snapshot, ticket.timeline, rows
        )
        empty = is_empty(ticket.kind, ticket.snapshot, ticket.timeline, rows)
        entry = sealing.get(ticket.seal_seq) if ticket.seal_seq is not None else None
        problem = seal_problem(ticket.ticket_id, digest, empty, ticket.seal_seq, entry, checks)
        result.append((ticket, {row["name"]: row for row in rows}, digest, problem))
    return result


def view_of(
    ticket: LockedTicket, rows: Mapping[str, Mapping[str, Any]], problem: tuple[str, str] | None
) -> TicketView:
    """The view of a locked ticket (empty when its state does not match its seal)."""
    return TicketView(
        ticket_id=ticket.ticket_id,
        kind=ticket.kind,
        snapshot=normalise_value(exactjson.loads(ticket.snapshot)) if problem is None else {},
        group=ticket.group_name,
        timers=tuple(scheduled_timer(row) for row in rows.values()) if problem is None else (),
        timeline=orjson.loads(ticket.timeline or "{}") if problem is None else {},
    )


def scheduled_timer(row: Mapping[str, Any]) -> ScheduledTimer:
    """The timer of a `timers` row read as column → value."""
    return _scheduled(SimpleNamespace(**row))


def postpone_refused(sql: Statements, now: datetime, refused: Iterable[Loaded]) -> None:
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


def apply_writes(
    sql: Statements, now: datetime, items: Iterable[tuple[Loaded, TicketWrite]]
) -> dict[str, str]:
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
            values = timer_values(view.ticket_id, timer, now)
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
TIMER_COLUMNS = _TIMER_COLUMNS
"""The columns `select_timers` reads, in order."""


def timer_values(ticket_id: str, timer: ScheduledTimer, now: datetime) -> dict[str, Any]:
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
