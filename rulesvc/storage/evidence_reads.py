"""Reads that check acted-on rows against the chain: decisions' records with the chain entries their rows
point at, the feed and webhook deliveries in pages, and per-decision feed counts (for `verify`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from rulesvc.audit.chain import KIND_DECISION, Problem
from rulesvc.audit.evidence import Vouching
from rulesvc.audit.records import FeedRecord, StoredDelivery
from rulesvc.masking import default_policy
from rulesvc.storage.decision_writes import chain_entry
from rulesvc.storage.tables import ActionRow, AuditRow, DecisionRow
from rulesvc.storage.ticket_seals import (
    KIND_TICKETS_SEALED,
    SEALED_TIMER_COLUMNS,
    SealChecks,
    is_empty,
    seal_problem,
    sealed_tickets,
    state_digest,
)
from rulesvc.storage.timer_tables import TicketRow, TimerRow
from rulesvc.storage.webhook_tables import DeliveryRow

_BATCH = 500


class SqlEvidenceReader:
    def __init__(self, engine: Engine) -> None:
        self._read = sessionmaker(bind=engine, expire_on_commit=False)

    def vouching(self, decision_ids: Iterable[str]) -> dict[str, Vouching]:
        """Each decision's record and the chain entry at its `chain_seq` (None where missing)."""
        ids = list(dict.fromkeys(decision_ids))
        found: dict[str, Vouching] = {d: Vouching(d, None, None) for d in ids}
        with self._read() as session:
            for start in range(0, len(ids), _BATCH):
                rows = session.execute(
                    select(DecisionRow.decision_id, DecisionRow.record, AuditRow)
                    .outerjoin(AuditRow, AuditRow.seq == DecisionRow.chain_seq)
                    .where(DecisionRow.decision_id.in_(ids[start : start + _BATCH]))
                ).all()
                for decision_id, record, audit in rows:
                    found[decision_id] = Vouching(
                        decision_id, record, chain_entry(audit) if audit is not None else None
                    )
        return found

    def feed_pages(self) -> Iterator[list[FeedRecord]]:
        last = 0
        while True:
            with self._read() as session:
                rows = session.scalars(
                    select(ActionRow).where(ActionRow.cursor > last).order_by(ActionRow.cursor).limit(_BATCH)
                ).all()
            if not rows:
                return
            yield [FeedRecord(r.cursor, r.at, r.ticket_id, r.decision_id, r.action) for r in rows]
            last = rows[-1].cursor

    def feed_counts(self) -> dict[str, int]:
        """Feed records per decision id."""
        with self._read() as session:
            rows = session.execute(
                select(ActionRow.decision_id, func.count()).group_by(ActionRow.decision_id)
            ).all()
        return {str(decision_id): int(count) for decision_id, count in rows}

    def decision_records(self) -> Iterator[list[tuple[str, int, str]]]:
        """(decision_id, chain_seq, record) in pages, in chain order."""
        last = -1
        while True:
            with self._read() as session:
                rows = session.execute(
                    select(DecisionRow.decision_id, DecisionRow.chain_seq, DecisionRow.record)
                    .where(DecisionRow.chain_seq > last)
                    .order_by(DecisionRow.chain_seq)
                    .limit(_BATCH)
                ).all()
            if not rows:
                return
            yield [(str(d), int(s), str(r)) for d, s, r in rows]
            last = int(rows[-1][1])

    def delivery_pages(self) -> Iterator[list[StoredDelivery]]:
        last = 0
        while True:
            with self._read() as session:
                rows = session.execute(
                    select(DeliveryRow.id, DeliveryRow.delivery_id, DeliveryRow.cursor, DeliveryRow.body)
                    .where(DeliveryRow.id > last)
                    .order_by(DeliveryRow.id)
                    .limit(_BATCH)
                ).all()
            if not rows:
                return
            yield [StoredDelivery(str(d), int(c), str(b)) for _, d, c, b in rows]
            last = int(rows[-1][0])

    def ticket_problems(self) -> list[Problem]:
        """Every ticket's stored state against the chain entry sealing it, and against the newest entry
        sealing that ticket (an older sealed state put back is `seal_stale`; a sealed ticket whose row is
        gone is `ticket_missing`)."""
        latest = self._latest_seals()
        problems: list[Problem] = []
        mask = default_policy().mask_text
        checks: SealChecks = {}
        last = ""
        while True:
            with self._read() as session:
                tickets = session.execute(
                    select(
                        TicketRow.ticket_id,
                        TicketRow.kind,
                        TicketRow.group_name,
                        TicketRow.snapshot,
                        TicketRow.timeline,
                        TicketRow.seal_seq,
                        AuditRow,
                    )
                    .outerjoin(AuditRow, AuditRow.seq == TicketRow.seal_seq)
                    .where(TicketRow.ticket_id > last)
                    .order_by(TicketRow.ticket_id)
                    .limit(_BATCH)
                ).all()
                ids = [row[0] for row in tickets]
                timers: dict[str, list[dict[str, Any]]] = {t: [] for t in ids}
                for row in session.execute(
                    select(TimerRow.ticket_id, *(getattr(TimerRow, c) for c in SEALED_TIMER_COLUMNS)).where(
                        TimerRow.ticket_id.in_(ids)
                    )
                ):
                    timers[row[0]].append(dict(zip(SEALED_TIMER_COLUMNS, row[1:], strict=True)))
            if not tickets:
                break
            for ticket_id, kind, group, snapshot, timeline, seal_seq, audit in tickets:
                rows = timers[ticket_id]
                digest = state_digest(ticket_id, kind, group, snapshot, timeline, rows)
                entry = chain_entry(audit) if audit is not None else None
                empty = is_empty(kind, snapshot, timeline, rows)
                found = seal_problem(ticket_id, digest, empty, seal_seq, entry, checks)
                newest = latest.pop(ticket_id, None)
                if found is None and newest is not None and newest != seal_seq:
                    found = (
                        "seal_stale",
                        f"工单 {mask(ticket_id)} 的状态被换回较早的版本（审计日志第 {newest} 条已记录更新的状态）",
                    )
                if found is not None:
                    problems.append(Problem("tickets", mask(ticket_id), found[0], found[1], seal_seq))
            last = str(tickets[-1][0])
        for ticket_id, seq in sorted(latest.items()):
            problems.append(
                Problem(
                    "tickets",
                    mask(ticket_id),
                    "ticket_missing",
                    f"工单 {mask(ticket_id)} 的状态已写入审计日志，但工单已被删除",
                    seq,
                )
            )
        return problems

    def _latest_seals(self) -> dict[str, int]:
        """Ticket id → seq of the newest chain entry sealing its state."""
        latest: dict[str, int] = {}
        last = 0
        while True:
            with self._read() as session:
                rows = session.scalars(
                    select(AuditRow)
                    .where(AuditRow.kind.in_((KIND_DECISION, KIND_TICKETS_SEALED)), AuditRow.seq > last)
                    .order_by(AuditRow.seq)
                    .limit(_BATCH)
                ).all()
            if not rows:
                return latest
            for row in rows:
                if row.kind == KIND_DECISION and not (
                    "ticket_sha256" in row.payload or '"tickets"' in row.payload
                ):
                    continue
                try:
                    sealed = sealed_tickets(chain_entry(row))
                except ValueError:
                    continue  # an unreadable entry is reported by the chain check
                for ticket_id in sealed:
                    latest[ticket_id] = row.seq
            last = rows[-1].seq
