"""Use cases of webhook delivery: manage subscriptions, turn feed actions into deliveries, reserve attempts
and record their outcome (retry with backoff, dead letters, re-drive).

The HTTP call itself is made by `scheduler.delivery` (through `request_for` and `complete`); nothing here
does I/O except through the `WebhookStore` port.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from urllib.parse import urlsplit

from rulesvc import exactjson
from rulesvc.audit.evidence import EvidenceError, EvidenceReader, body_decision_id, delivery_problem, refuse
from rulesvc.audit.records import FeedRecord
from rulesvc.delivery.channels import accepts, channel_url, parse_channel_url, subscription_id
from rulesvc.delivery.ports import (
    DEAD,
    Backlog,
    ClaimedDelivery,
    DeliveryRecord,
    NewDelivery,
    SubscriptionRecord,
    WebhookStore,
)
from rulesvc.delivery.webhooks import (
    RetryPolicy,
    SubscriptionFilter,
    delivery_body,
    delivery_id,
    new_secret,
    signed_headers,
)
from rulesvc.errors import RulesvcError
from rulesvc.fieldclasses import CLASSES, SUBSCRIPTION_DEFAULT, ClassMasking
from rulesvc.lang.model import KindSchema
from rulesvc.masking import MaskPolicy, default_policy
from rulesvc.settings import ChannelConfig
from rulesvc.sla.clock import Clock


class InvalidSubscriptionError(RulesvcError):
    code = "invalid_subscription"

    def __init__(self, message: str, path: str) -> None:
        self.path = path
        super().__init__(message)


class SubscriptionNotFoundError(RulesvcError):
    code = "not_found"

    def __init__(self, subscription_id: str) -> None:
        self.subscription_id = subscription_id
        super().__init__(f"webhook 订阅 {subscription_id!r} 不存在")


class DeliveryNotFoundError(RulesvcError):
    code = "not_found"

    def __init__(self, delivery_id: str) -> None:
        self.delivery_id = delivery_id
        super().__init__(f"死信 {delivery_id!r} 不存在")


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt: the status received (HTTP; 250 for a message an SMTP server took), or the
    transport error (timeout, refused), or both when a 2xx answer still said no (a robot's `errcode`)."""

    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.error is None


# `any_active` asks the store at its next call (after this service changed a subscription itself).
_UNCHECKED: tuple[float, bool] = (float("-inf"), True)


class WebhookService:
    def __init__(
        self,
        store: WebhookStore,
        clock: Clock,
        policy: RetryPolicy | None = None,
        rand: Callable[[], float] = random.random,
        evidence: EvidenceReader | None = None,
        masking: MaskPolicy | None = None,
        classes: ClassMasking | None = None,
        kinds: Callable[[], Mapping[str, KindSchema]] | None = None,
    ) -> None:
        """With `evidence`, a body is checked against its decision's chained record before it is signed;
        bodies are masked with `masking` (default: the shipped rules) and, with `classes` and the `kinds`
        in force, every field of a class the subscription is not granted."""
        self.masking = masking or default_policy()
        self.classes = classes or ClassMasking(self.masking)
        self._kinds = kinds or (lambda: {})
        self.store = store
        self.evidence = evidence
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self._rand = rand
        self._active_checked: tuple[float, bool] = _UNCHECKED
        self.channels: dict[str, ChannelConfig] = {}
        """The notification channels this process delivers (`sync_channels`), by subscription id."""

    def any_active(self, max_age: float = 1.0) -> bool:
        """Whether some subscription is active (known at most `max_age` seconds ago): with none, a delivery
        round has nothing to fan out or send, and under load rounds run many times a second."""
        checked_at, active = self._active_checked
        now = time.monotonic()
        if now - checked_at > max_age:
            active = self.store.has_active_subscriptions()
            self._active_checked = (now, active)
        return active

    # -- subscriptions ------------------------------------------------------------------------------------

    def create_subscription(
        self,
        url: str,
        *,
        secret: str | None = None,
        kinds: Iterable[str] = (),
        action_types: Iterable[str] = (),
        description: str = "",
        from_start: bool = False,
        classes: Iterable[str] = SUBSCRIPTION_DEFAULT,
    ) -> SubscriptionRecord:
        """A new subscription; it receives actions emitted from now on (or the whole feed: `from_start`),
        with the fields of `classes` in clear (a grant beyond the default is a chain entry)."""
        _check_url(url)
        chosen = tuple(c for c in CLASSES if c in set(classes))
        if set(classes) - set(CLASSES):
            raise InvalidSubscriptionError(f"classes 只能是 {', '.join(CLASSES)}", "classes")
        if secret is not None and len(secret) < 16:
            raise InvalidSubscriptionError("secret 至少 16 个字符", "secret")
        record = SubscriptionRecord(
            id="wh_" + secrets.token_hex(6),
            url=url,
            secret=secret or new_secret(),
            kinds=tuple(sorted(set(kinds))),
            action_types=tuple(sorted(set(action_types))),
            description=description,
            active=True,
            created_at=self.clock.now(),
            fanout_cursor=0 if from_start else self.store.last_cursor(),
            classes=chosen,
        )
        self.store.create_subscription(record)
        self._active_checked = _UNCHECKED
        return record

    def subscriptions(self) -> list[SubscriptionRecord]:
        return self.store.list_subscriptions()

    def subscription(self, subscription_id: str) -> SubscriptionRecord:
        record = self.store.get_subscription(subscription_id)
        if record is None:
            raise SubscriptionNotFoundError(subscription_id)
        return record

    def set_active(self, subscription_id: str, active: bool) -> SubscriptionRecord:
        """An operator pauses or resumes a subscription: a paused notification channel stays paused over
        worker restarts (its settings define and update it, they do not resume it)."""
        self._active_checked = _UNCHECKED
        if not self.store.set_active(subscription_id, active, paused=not active):
            raise SubscriptionNotFoundError(subscription_id)
        return self.subscription(subscription_id)

    def delete_subscription(self, subscription_id: str) -> None:
        if not self.store.delete_subscription(subscription_id):
            raise SubscriptionNotFoundError(subscription_id)

    def sync_channels(self, channels: Mapping[str, ChannelConfig]) -> list[SubscriptionRecord]:
        """Make each configured notification channel a subscription of its own (`ch_<name>`, receiving the
        actions emitted from now on), bring a changed one's filters up to date (its deliveries kept), and
        deactivate the channels no longer configured (their pending deliveries and dead letters stay,
        re-drivable once the channel is configured again). A configured channel is active again unless an
        operator paused it (`set_active`): that pause lasts until the operator resumes it."""
        self.channels = {subscription_id(name): config for name, config in channels.items()}
        self._active_checked = _UNCHECKED
        known = {sub.id: sub for sub in self.store.list_subscriptions()}
        synced = []
        for name, config in channels.items():
            identifier = subscription_id(name)
            url = channel_url(config, name)
            kinds = tuple(sorted(set(config.kinds)))
            actions = tuple(sorted(set(config.actions)))
            sub = known.get(identifier)
            if sub is None:
                record = SubscriptionRecord(
                    id=identifier,
                    url=url,
                    secret=new_secret(),
                    kinds=kinds,
                    action_types=actions,
                    description=f"通知渠道 {name}（{config.type}）",
                    active=True,
                    created_at=self.clock.now(),
                    fanout_cursor=self.store.last_cursor(),
                )
                try:
                    self.store.create_subscription(record)
                except Exception:  # another worker created it meanwhile: update it below
                    if self.store.get_subscription(identifier) is None:
                        raise
                    sub = self.store.get_subscription(identifier)
            if sub is not None:
                if (sub.url, sub.kinds, sub.action_types) != (url, kinds, actions):
                    self.store.update_filters(identifier, url, kinds, actions)
                if not sub.active and not sub.paused:
                    self.store.set_active(identifier, True)
            synced.append(self.subscription(identifier))
        for sub in known.values():
            if parse_channel_url(sub.url) is not None and sub.id not in self.channels and sub.active:
                self.store.set_active(sub.id, False)
        return synced

    # -- dead letters -------------------------------------------------------------------------------------

    def dead_letters(self, subscription_id: str | None, after: int, limit: int) -> list[DeliveryRecord]:
        return self.store.deliveries(subscription_id, DEAD, after, limit)

    def deliveries(
        self, subscription_id: str | None, status: str | None, after: int, limit: int
    ) -> list[DeliveryRecord]:
        return self.store.deliveries(subscription_id, status, after, limit)

    def redrive(self, subscription_id: str | None = None, delivery_id: str | None = None) -> int:
        """Dead letters back to pending with a fresh attempt budget; a named one must exist."""
        count = self.store.redrive(self.clock.now(), subscription_id, delivery_id)
        if delivery_id is not None and not count:
            raise DeliveryNotFoundError(delivery_id)
        return count

    def discard(self, delivery: str) -> None:
        """Give up on a dead letter (later deliveries of its ticket go ahead without it)."""
        if not self.store.discard(delivery):
            raise DeliveryNotFoundError(delivery)

    def backlog(self) -> Mapping[str, Backlog]:
        return self.store.backlog()

    # -- delivery -----------------------------------------------------------------------------------------

    def fan_out(self, limit: int = 1000) -> int:
        return self.store.fan_out(
            partial(_build_delivery, self.policy_of, self.channels), self.clock.now(), limit, self.serves
        )

    def serves(self, sub: SubscriptionRecord) -> bool:
        """Whether this process fans out and sends `sub`'s deliveries: every webhook, and the notification
        channels configured here (a process without a channel's settings could not apply its filters)."""
        return parse_channel_url(sub.url) is None or sub.id in self.channels

    def policy_of(self, sub: SubscriptionRecord) -> MaskPolicy | None:
        """How a subscription's bodies are masked (None: in clear)."""
        return self.classes.for_classes(frozenset(sub.classes), self._kinds())

    def claim(self, limit: int, subscription_id: str | None = None) -> list[ClaimedDelivery]:
        now = self.clock.now()
        lease = now + timedelta(seconds=self.policy.lease_seconds)
        return self.store.claim(now, lease, limit, subscription_id)

    def begin_attempt(self, claimed: ClaimedDelivery) -> bool:
        """Renew the claim's lease from now; False when another worker holds the delivery now."""
        lease = self.clock.now() + timedelta(seconds=self.policy.lease_seconds)
        return self.store.renew(claimed.row_id, claimed.attempts, lease)

    def active_subscription_ids(self) -> list[str]:
        """Active webhooks, and the active notification channels configured in this process (a worker
        without a channel's settings leaves its deliveries to the workers that have them)."""
        return [s.id for s in self.store.list_subscriptions() if s.active and self.serves(s)]

    def request_for(self, claimed: ClaimedDelivery) -> tuple[dict[str, str], bytes]:
        """Headers (signed now) and the body of one attempt. Only a body whose action its decision's chained
        record holds is signed; any other raises `EvidenceError` (give it to `reject`)."""
        if self.evidence is not None:
            vouching = self.evidence.vouching([body_decision_id(claimed.body)])
            sub = self.store.get_subscription(claimed.subscription_id)
            policy = self.policy_of(sub) if sub is not None else self.masking
            # Only the form this subscription is to receive: a clear body in a masked subscription's row
            # (or one masked otherwise) is refused, not sent.
            found = delivery_problem(
                claimed.body, vouching, [policy] if policy is not None else [], strict=True
            )
            if found is not None:
                raise refuse("webhook_deliveries", claimed.delivery_id, found)
        body = claimed.body.encode("utf-8")
        timestamp = int(self.clock.now().timestamp())
        return signed_headers(claimed.secret, timestamp, body, claimed.delivery_id), body

    def reject(self, claimed: ClaimedDelivery, error: EvidenceError) -> None:
        """A body that failed its check is never sent: it becomes a dead letter naming the error code
        (re-drivable once the row is restored)."""
        message = f"{error.code}: {error.reason}: {error}"
        self.store.mark_failed(claimed.row_id, None, message, self.clock.now(), True)

    def complete(self, claimed: ClaimedDelivery, result: SendResult) -> bool:
        """Record an attempt's outcome; returns True when the delivery became a dead letter."""
        now = self.clock.now()
        if result.ok:
            assert result.status is not None
            self.store.mark_delivered(claimed.row_id, now, result.status, claimed.attempts)
            return False
        dead = claimed.attempts >= self.policy.max_attempts
        delay = self.policy.delay(claimed.attempts, self._rand)
        error = result.error or f"HTTP {result.status}"
        self.store.mark_failed(
            claimed.row_id, result.status, error, now + timedelta(seconds=delay), dead, claimed.attempts
        )
        return dead


def _build_delivery(
    policy_of: Callable[[SubscriptionRecord], MaskPolicy | None],
    channels: Mapping[str, ChannelConfig],
    sub: SubscriptionRecord,
    record: FeedRecord,
    kind: str | None,
) -> NewDelivery | None:
    """The delivery of one feed action; personal data in its ids and action leaves masked, and fields of
    the classes the subscription is not granted. A notification channel's takes only the `notify` actions
    naming one of its `notify_channels`."""
    action = exactjson.loads(record.action_text)
    if not SubscriptionFilter.of(sub.kinds, sub.action_types).matches(kind, action):
        return None
    channel = channels.get(sub.id)
    if channel is not None and not accepts(channel, action):
        return None
    identifier = delivery_id(sub.id, record.cursor)
    masking = policy_of(sub)
    if masking is None:  # granted every class: in clear
        return NewDelivery(
            identifier,
            str(action.get("type", "")),
            delivery_body(
                identifier,
                sub.id,
                record.cursor,
                record.at,
                record.ticket_id,
                kind,
                record.decision_id,
                action,
            ),
        )
    body = delivery_body(
        identifier,
        sub.id,
        record.cursor,
        record.at,
        masking.mask_text(record.ticket_id),
        kind,
        record.decision_id,
        masking.mask_action(action),
    )
    return NewDelivery(identifier, str(action.get("type", "")), body)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSubscriptionError("url 必须是 http(s)://host/... 形式", "url")
