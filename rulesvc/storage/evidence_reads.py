"""Reads that check acted-on rows against the chain: decisions' records with the chain entries their rows
point at, the feed and webhook deliveries in pages, and per-decision feed counts (for `verify`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from rulesvc.audit.evidence import Vouching
from rulesvc.decisions.ports import FeedRecord
from rulesvc.storage.decision_writes import chain_entry
from rulesvc.storage.tables import ActionRow, AuditRow, DecisionRow
from rulesvc.storage.webhook_tables import DeliveryRow

_BATCH = 500


@dataclass(frozen=True)
class StoredDelivery:
    delivery_id: str
    cursor: int
    body: str


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
