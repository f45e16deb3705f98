"""`OpsStatus` on SQL: the figures `/metrics` reads from the database at scrape time, and the shared status
rows (worker heartbeats, last verify) of table `ops_status`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, and_, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from rulesvc.opsstate import LATE_AFTER, OpsSnapshot, StatusRow
from rulesvc.sla.timers import PAUSED
from rulesvc.storage.engine import writer
from rulesvc.storage.tables import AuditHeadRow, OpsStatusRow
from rulesvc.storage.timer_tables import SlaResultRow, TimerRow
from rulesvc.storage.webhook_tables import DeliveryRow, SubscriptionRow

HOUR = timedelta(hours=1)


class SqlOpsStatus:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def snapshot(self, now: datetime) -> OpsSnapshot:
        pending = and_(TimerRow.next_fire_at.is_not(None), TimerRow.status != PAUSED)
        with self.engine.connect() as conn:
            timers = conn.execute(
                select(TimerRow.calendar, TimerRow.name, func.count())
                .where(pending)
                .group_by(TimerRow.calendar, TimerRow.name)
            ).all()
            due = conn.execute(
                select(TimerRow.calendar, func.count())
                .where(pending, TimerRow.due_at >= now, TimerRow.due_at < now + HOUR)
                .group_by(TimerRow.calendar)
            ).all()
            overdue = conn.execute(
                select(TimerRow.calendar, func.count())
                .where(pending, TimerRow.next_fire_at < now - LATE_AFTER)
                .group_by(TimerRow.calendar)
            ).all()
            deliveries = conn.execute(
                select(
                    DeliveryRow.subscription_id,
                    DeliveryRow.status,
                    func.count(),
                    func.min(DeliveryRow.created_at),
                )
                .where(DeliveryRow.status.in_(("pending", "dead")))
                .group_by(DeliveryRow.subscription_id, DeliveryRow.status)
            ).all()
            outcomes = conn.execute(
                select(SlaResultRow.kind, SlaResultRow.timer, SlaResultRow.outcome, func.count()).group_by(
                    SlaResultRow.kind, SlaResultRow.timer, SlaResultRow.outcome
                )
            ).all()
            subscriptions = (
                conn.execute(
                    select(SubscriptionRow.id)
                    .where(SubscriptionRow.active.is_(True))
                    .order_by(SubscriptionRow.id)
                )
                .scalars()
                .all()
            )
            head = conn.execute(select(AuditHeadRow.seq).where(AuditHeadRow.id == 1)).scalar()
            rows = conn.execute(
                select(OpsStatusRow.name, OpsStatusRow.at, OpsStatusRow.started_at, OpsStatusRow.payload)
            ).all()
        snapshot = OpsSnapshot(
            at=now,
            timers_pending={(str(c), str(n)): int(k) for c, n, k in timers},
            timers_due_next_hour={str(c): int(k) for c, k in due},
            timers_overdue={str(c): int(k) for c, k in overdue},
            sla_outcomes={(str(k), str(t), str(o)): int(n) for k, t, o, n in outcomes},
            subscriptions=[str(s) for s in subscriptions],
            chain_length=int(head or 0),
            statuses=[
                StatusRow(
                    str(name),
                    aggregate_time(at),
                    aggregate_time(started) if started else None,
                    _payload(payload),
                )
                for name, at, started, payload in rows
            ],
        )
        for subscription, status, count, oldest in deliveries:
            if status == "pending":
                snapshot.webhooks_pending[str(subscription)] = int(count)
                snapshot.webhooks_oldest_pending[str(subscription)] = aggregate_time(oldest)
            else:
                snapshot.webhooks_dead[str(subscription)] = int(count)
        return snapshot

    def put(
        self, name: str, at: datetime, payload: dict[str, Any], started_at: datetime | None = None
    ) -> None:
        values = {"name": name, "at": at, "started_at": started_at, "payload": orjson.dumps(payload).decode()}
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(OpsStatusRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[OpsStatusRow.name],
            set_={"at": at, "started_at": started_at, "payload": values["payload"]},
        )
        with writer(self.engine).begin() as conn:
            conn.execute(statement)

    def get(self, name: str) -> StatusRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(OpsStatusRow.at, OpsStatusRow.started_at, OpsStatusRow.payload).where(
                    OpsStatusRow.name == name
                )
            ).first()
        if row is None:
            return None
        at, started, payload = row
        return StatusRow(
            name, aggregate_time(at), aggregate_time(started) if started else None, _payload(payload)
        )

    def forget_before(self, prefix: str, before: datetime) -> int:
        with writer(self.engine).begin() as conn:
            result = conn.execute(
                delete(OpsStatusRow).where(OpsStatusRow.name.startswith(prefix), OpsStatusRow.at < before)
            )
        return int(result.rowcount or 0)


def _payload(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def aggregate_time(value: Any) -> datetime:
    """Aggregates (`min`) bypass the column type: SQLite gives text or naive datetimes."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
