"""SQLAlchemy implementation of `WebhookStore` (PostgreSQL and SQLite).

- Fan-out: for each active subscription (locked `SKIP LOCKED`, so one replica at a time handles it), the
  actions after its `fanout_cursor` become delivery rows and the cursor advances, in one transaction.
  Action cursors are allocated in commit order (appends hold the chain-head lock), so none is skipped.
- Claim: a delivery may be attempted when it is pending, its `next_attempt_at` has passed, and no earlier
  delivery of the same ticket to the same subscription is still pending or dead (order per ticket). The
  claim moves `next_attempt_at` to the end of a lease and commits before the HTTP call, so a worker that
  dies mid-call only delays the retry. The lease is renewed when the attempt starts (`renew`, fenced by the
  attempt number the claim set), so it cannot run out while a claimed delivery waits for a free sender or
  while the receiver is answering: replicas never attempt the same delivery at once, and a sender whose
  claim was lost neither sends nor records anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from rulesvc.audit.chain import Problem, entry_hash, sha256_hex
from rulesvc.audit.evidence import alert
from rulesvc.audit.records import FeedRecord
from rulesvc.delivery.ports import (
    DEAD,
    DELIVERED,
    DISCARDED,
    PENDING,
    Backlog,
    ClaimedDelivery,
    DeliveryBuilder,
    DeliveryRecord,
    SubscriptionRecord,
)
from rulesvc.storage.bulk import Statements
from rulesvc.storage.decision_writes import (
    chain,
    chain_entry,
    chain_head,
    lock_chain_head,
    raise_watermark,
    write_entries,
)
from rulesvc.storage.engine import writer
from rulesvc.storage.ops_store import aggregate_time
from rulesvc.storage.tables import ActionRow, AuditRow
from rulesvc.storage.timer_tables import TicketRow
from rulesvc.storage.webhook_tables import DeliveryRow, SubscriptionRow

_ERROR_LIMIT = 1000
KIND_SUBSCRIPTION = "webhook_subscription"
"""A subscription granted field classes beyond the default: subject its id; `url`, `classes`, `grant_sha256`."""
DEFAULT_CLASSES = ("公开", "内部")


class SqlWebhookStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=writer(engine), expire_on_commit=False)

    # -- subscriptions ------------------------------------------------------------------------------------

    def create_subscription(self, record: SubscriptionRecord) -> None:
        """The row; a grant of field classes beyond the default is a `webhook_subscription` chain entry in
        the same transaction (`grant_digest`: id, url and classes), checked whenever the row is read."""
        entries = []
        with self._write() as session, session.begin():
            if tuple(record.classes) != DEFAULT_CLASSES:
                sql = Statements(session.connection())
                head = chain_head(lock_chain_head(sql))
                payload = {
                    "subscription_id": record.id,
                    "url": record.url,
                    "classes": list(record.classes),
                    "grant_sha256": grant_digest(record.id, record.url, record.classes),
                }
                entries = chain(
                    head, [(record.created_at.isoformat(), KIND_SUBSCRIPTION, record.id, payload)]
                )
                write_entries(sql, entries)
            session.add(
                SubscriptionRow(
                    id=record.id,
                    url=record.url,
                    secret=record.secret,
                    kinds=orjson.dumps(list(record.kinds)).decode(),
                    action_types=orjson.dumps(list(record.action_types)).decode(),
                    description=record.description,
                    active=record.active,
                    created_at=record.created_at,
                    fanout_cursor=record.fanout_cursor,
                    classes=orjson.dumps(list(record.classes)).decode(),
                    paused=record.paused,
                )
            )
        if entries:
            raise_watermark(self.engine.pool, entries[-1].seq)

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        with self._read() as session:
            row = session.get(SubscriptionRow, subscription_id)
            return _subscription(row, session) if row is not None else None

    def list_subscriptions(self) -> list[SubscriptionRecord]:
        with self._read() as session:
            rows = session.scalars(select(SubscriptionRow).order_by(SubscriptionRow.created_at)).all()
            return [_subscription(row, session) for row in rows]

    def set_active(self, subscription_id: str, active: bool, *, paused: bool | None = None) -> bool:
        values = {"active": active} if paused is None else {"active": active, "paused": paused}
        with self._write() as session, session.begin():
            result = session.execute(
                update(SubscriptionRow).where(SubscriptionRow.id == subscription_id).values(**values)
            )
            return bool(getattr(result, "rowcount", 0))

    def update_filters(
        self, subscription_id: str, url: str, kinds: tuple[str, ...], action_types: tuple[str, ...]
    ) -> bool:
        with self._write() as session, session.begin():
            result = session.execute(
                update(SubscriptionRow)
                .where(SubscriptionRow.id == subscription_id)
                .values(
                    url=url,
                    kinds=orjson.dumps(list(kinds)).decode(),
                    action_types=orjson.dumps(list(action_types)).decode(),
                )
            )
            return bool(getattr(result, "rowcount", 0))

    def delete_subscription(self, subscription_id: str) -> bool:
        with self._write() as session, session.begin():
            session.execute(delete(DeliveryRow).where(DeliveryRow.subscription_id == subscription_id))
            result = session.execute(delete(SubscriptionRow).where(SubscriptionRow.id == subscription_id))
            return bool(getattr(result, "rowcount", 0))

    def grant_problems(self) -> list[Problem]:
        """`verify`: subscriptions granted field classes the chain does not vouch for (to their URL)."""
        problems: list[Problem] = []
        with self._read() as session:
            for row in session.scalars(select(SubscriptionRow).order_by(SubscriptionRow.id)).all():
                found = grant_problem(session, row)
                if found is not None:
                    problems.append(Problem("webhook_subscriptions", row.id, found[0], found[1]))
        return problems

    def has_active_subscriptions(self) -> bool:
        with self._read() as session:
            return (
                session.scalar(select(SubscriptionRow.id).where(SubscriptionRow.active.is_(True)).limit(1))
                is not None
            )

    def last_cursor(self) -> int:
        with self._read() as session:
            return int(session.scalar(select(func.max(ActionRow.cursor))) or 0)

    # -- fan-out ------------------------------------------------------------------------------------------

    def fan_out(
        self,
        build: DeliveryBuilder,
        now: datetime,
        limit: int,
        serves: Callable[[SubscriptionRecord], bool] | None = None,
    ) -> int:
        """Turn up to `limit` new actions per subscription into deliveries; returns how many were created.
        A subscription `serves` refuses is left as it is (its actions wait for a process that serves it)."""
        created = 0
        with self._write() as session, session.begin():
            subscriptions = session.scalars(
                select(SubscriptionRow)
                .where(SubscriptionRow.active.is_(True))
                .order_by(SubscriptionRow.id)
                .with_for_update(skip_locked=True)
            ).all()
            for sub in subscriptions:
                rows = session.execute(
                    select(ActionRow, TicketRow.kind)
                    .outerjoin(TicketRow, TicketRow.ticket_id == ActionRow.ticket_id)
                    .where(ActionRow.cursor > sub.fanout_cursor)
                    .order_by(ActionRow.cursor)
                    .limit(limit)
                ).all()
                if not rows:
                    continue
                record = _subscription(sub, session)
                if serves is not None and not serves(record):
                    continue
                values: list[dict[str, Any]] = []
                for action, kind in rows:
                    feed = FeedRecord(
                        action.cursor, action.at, action.ticket_id, action.decision_id, action.action
                    )
                    new = build(record, feed, kind)
                    if new is None:
                        continue
                    values.append(
                        {
                            "delivery_id": new.delivery_id,
                            "subscription_id": sub.id,
                            "cursor": action.cursor,
                            "ticket_id": action.ticket_id,
                            "action_type": new.action_type[:64],
                            "body": new.body,
                            "status": PENDING,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                    )
                if values:
                    session.execute(insert(DeliveryRow), values)
                    created += len(values)
                sub.fanout_cursor = rows[-1][0].cursor
        return created

    # -- attempts -----------------------------------------------------------------------------------------

    def claim(
        self, now: datetime, lease_until: datetime, limit: int, subscription_id: str | None = None
    ) -> list[ClaimedDelivery]:
        earlier = aliased(DeliveryRow)
        blocked = (
            exists()
            .where(
                earlier.subscription_id == DeliveryRow.subscription_id,
                earlier.ticket_id == DeliveryRow.ticket_id,
                earlier.cursor < DeliveryRow.cursor,
                earlier.status.in_((PENDING, DEAD)),
            )
            .correlate(DeliveryRow)
        )
        statement = (
            select(DeliveryRow, SubscriptionRow.url, SubscriptionRow.secret)
            .join(SubscriptionRow, SubscriptionRow.id == DeliveryRow.subscription_id)
            .where(
                DeliveryRow.status == PENDING,
                DeliveryRow.next_attempt_at <= now,
                SubscriptionRow.active.is_(True),
                ~blocked,
                *([DeliveryRow.subscription_id == subscription_id] if subscription_id is not None else []),
            )
            .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=DeliveryRow)
        )
        with self._write() as session, session.begin():
            rows = session.execute(statement).all()
            claimed = []
            for delivery, url, secret in rows:
                delivery.attempts += 1
                delivery.next_attempt_at = lease_until
                claimed.append(
                    ClaimedDelivery(
                        delivery.id,
                        delivery.delivery_id,
                        delivery.subscription_id,
                        url,
                        secret,
                        delivery.body,
                        delivery.attempts,
                    )
                )
        return claimed

    def renew(self, row_id: int, attempt: int, lease_until: datetime) -> bool:
        """Start attempt `attempt` of a claimed delivery: extend its lease to `lease_until` (from the moment
        the attempt starts, so it cannot expire before the attempt ends). False when the claim was lost
        (the lease ran out and another worker claimed it: its attempt number moved on); then do not send."""
        with self._write() as session, session.begin():
            result = session.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.id == row_id, DeliveryRow.attempts == attempt, DeliveryRow.status == PENDING
                )
                .values(next_attempt_at=lease_until)
            )
        return bool(getattr(result, "rowcount", 0))

    def mark_delivered(self, row_id: int, now: datetime, status: int, attempt: int | None = None) -> None:
        with self._write() as session, session.begin():
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == row_id, *_fenced(attempt))
                .values(status=DELIVERED, delivered_at=now, last_status=status, last_error=None)
            )

    def mark_failed(
        self,
        row_id: int,
        status: int | None,
        error: str,
        next_attempt_at: datetime,
        dead: bool,
        attempt: int | None = None,
    ) -> None:
        with self._write() as session, session.begin():
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == row_id, DeliveryRow.status == PENDING, *_fenced(attempt))
                .values(
                    status=DEAD if dead else PENDING,
                    next_attempt_at=next_attempt_at,
                    last_status=status,
                    last_error=error[:_ERROR_LIMIT],
                )
            )

    # -- dead letters -------------------------------------------------------------------------------------

    def deliveries(
        self, subscription_id: str | None, status: str | None, after: int, limit: int
    ) -> list[DeliveryRecord]:
        statement = select(DeliveryRow).where(DeliveryRow.id > after)
        if subscription_id is not None:
            statement = statement.where(DeliveryRow.subscription_id == subscription_id)
        if status is not None:
            statement = statement.where(DeliveryRow.status == status)
        with self._read() as session:
            rows = session.scalars(statement.order_by(DeliveryRow.id).limit(limit)).all()
            return [_delivery(row) for row in rows]

    def redrive(self, now: datetime, subscription_id: str | None, delivery_id: str | None) -> int:
        """Dead letters (of one subscription, or one by id) back to pending with a fresh attempt budget."""
        statement = update(DeliveryRow).where(DeliveryRow.status == DEAD)
        if subscription_id is not None:
            statement = statement.where(DeliveryRow.subscription_id == subscription_id)
        if delivery_id is not None:
            statement = statement.where(DeliveryRow.delivery_id == delivery_id)
        with self._write() as session, session.begin():
            result = session.execute(statement.values(status=PENDING, attempts=0, next_attempt_at=now))
            return int(getattr(result, "rowcount", 0) or 0)

    def discard(self, delivery_id: str) -> bool:
        """Give up on a dead letter for good (it stops holding back later deliveries of its ticket)."""
        with self._write() as session, session.begin():
            result = session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.delivery_id == delivery_id, DeliveryRow.status == DEAD)
                .values(status=DISCARDED)
            )
            return bool(getattr(result, "rowcount", 0))

    def backlog(self) -> Mapping[str, Backlog]:
        with self._read() as session:
            rows = session.execute(
                select(
                    DeliveryRow.subscription_id,
                    DeliveryRow.status,
                    func.count(),
                    func.min(DeliveryRow.created_at),
                )
                .where(DeliveryRow.status.in_((PENDING, DEAD)))
                .group_by(DeliveryRow.subscription_id, DeliveryRow.status)
            ).all()
        found: dict[str, Backlog] = {}
        for subscription, status, count, oldest in rows:
            known = found.get(str(subscription), Backlog())
            found[str(subscription)] = (
                replace(known, pending=int(count), oldest_pending=aggregate_time(oldest))
                if status == PENDING
                else replace(known, dead=int(count))
            )
        return found


def _fenced(attempt: int | None) -> list[Any]:
    """Only the holder of the latest claim (its attempt number) records an outcome."""
    return [DeliveryRow.attempts == attempt] if attempt is not None else []


def grant_digest(subscription_id: str, url: str, classes: tuple[str, ...] | list[str]) -> str:
    return sha256_hex(orjson.dumps(["webhook_subscription", subscription_id, url, sorted(classes)]))


def grant_problem(session: Session, row: SubscriptionRow) -> tuple[str, str] | None:
    """(reason, message) unless the subscription's classes are the default or what its chain entry (the
    newest about it) granted, to its URL."""
    classes = tuple(orjson.loads(row.classes or "[]")) or DEFAULT_CLASSES
    if classes == DEFAULT_CLASSES:
        return None
    audit = session.scalars(
        select(AuditRow)
        .where(AuditRow.kind == KIND_SUBSCRIPTION, AuditRow.subject == row.id)
        .order_by(AuditRow.seq.desc())
        .limit(1)
    ).first()
    if audit is None:
        return "grant_missing", f"webhook 订阅 {row.id} 的字段类别授权没有审计日志条目（被直接写入数据库）"
    entry = chain_entry(audit)
    if (
        entry_hash(entry.seq, entry.at, entry.kind, entry.subject, entry.payload_text, entry.prev_hash)
        != entry.hash
    ):
        return "entry_mismatch", f"webhook 订阅 {row.id} 的授权审计日志条目被修改"
    payload = entry.payload
    if not isinstance(payload, Mapping) or payload.get("grant_sha256") != grant_digest(
        row.id, row.url, classes
    ):
        return "grant_mismatch", f"webhook 订阅 {row.id} 的地址或字段类别与审计日志记录的不符（被修改）"
    return None


def _subscription(row: SubscriptionRow, session: Session | None = None) -> SubscriptionRecord:
    """The subscription as stored; a grant of classes the chain does not vouch for is not honoured (the
    default classes instead, and an `integrity:` alert)."""
    classes = tuple(orjson.loads(row.classes or "[]")) or DEFAULT_CLASSES
    if classes != DEFAULT_CLASSES:
        found = grant_problem(session, row) if session is not None else ("grant_missing", "")
        if found is not None:
            alert("webhook_subscriptions", row.id, found)
            classes = DEFAULT_CLASSES
    return SubscriptionRecord(
        id=row.id,
        url=row.url,
        secret=row.secret,
        kinds=tuple(orjson.loads(row.kinds)),
        action_types=tuple(orjson.loads(row.action_types)),
        description=row.description,
        active=row.active,
        created_at=row.created_at,
        fanout_cursor=row.fanout_cursor,
        classes=classes,
        paused=bool(row.paused),
    )


def _delivery(row: DeliveryRow) -> DeliveryRecord:
    return DeliveryRecord(
        row_id=row.id,
        delivery_id=row.delivery_id,
        subscription_id=row.subscription_id,
        cursor=row.cursor,
        ticket_id=row.ticket_id,
        action_type=row.action_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        last_status=row.last_status,
        last_error=row.last_error,
    )
