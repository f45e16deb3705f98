"""What the webhook store hands in and out, and its port `WebhookStore`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rulesvc.audit.records import FeedRecord

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
DISCARDED = "discarded"


@dataclass(frozen=True)
class SubscriptionRecord:
    id: str
    url: str
    secret: str
    kinds: tuple[str, ...]
    action_types: tuple[str, ...]
    description: str
    active: bool
    created_at: datetime
    fanout_cursor: int
    classes: tuple[str, ...] = ("公开", "内部")
    """Field classes its bodies carry in clear (`rulesvc.fieldclasses`); personal data (个人信息) only
    when the audit chain vouches for the grant (a `webhook_subscription` entry), else the default."""
    paused: bool = False
    """Made inactive by an operator (`PATCH /v1/webhooks/{id}`): stays so until resumed, whatever the
    settings of a notification channel say at a worker start."""


@dataclass(frozen=True)
class DeliveryRecord:
    row_id: int
    delivery_id: str
    subscription_id: str
    cursor: int
    ticket_id: str
    action_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True)
class Backlog:
    """What waits for one subscription: deliveries pending (the oldest since when) and dead letters."""

    pending: int = 0
    dead: int = 0
    oldest_pending: datetime | None = None


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery reserved for one attempt (its lease runs until `lease_until`)."""

    row_id: int
    delivery_id: str
    subscription_id: str
    url: str
    secret: str
    body: str
    attempts: int
    """Attempts including this one."""


@dataclass(frozen=True)
class NewDelivery:
    delivery_id: str
    action_type: str
    body: str


# (subscription, feed record, ticket kind or None) -> the delivery to create, or None when filtered out
DeliveryBuilder = Callable[[SubscriptionRecord, FeedRecord, str | None], NewDelivery | None]


class WebhookStore(Protocol):
    def create_subscription(self, record: SubscriptionRecord) -> None: ...

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None: ...

    def list_subscriptions(self) -> list[SubscriptionRecord]: ...

    def set_active(self, subscription_id: str, active: bool, *, paused: bool | None = None) -> bool:
        """Active or not; with `paused`, whether an operator paused it (None: as it was). False: no such id."""
        ...

    def update_filters(
        self, subscription_id: str, url: str, kinds: tuple[str, ...], action_types: tuple[str, ...]
    ) -> bool:
        """A subscription's URL and filters changed in place (its deliveries kept); False: no such id."""
        ...

    def delete_subscription(self, subscription_id: str) -> bool: ...

    def has_active_subscriptions(self) -> bool: ...

    def last_cursor(self) -> int: ...

    def fan_out(
        self,
        build: DeliveryBuilder,
        now: datetime,
        limit: int,
        serves: Callable[[SubscriptionRecord], bool] | None = None,
    ) -> int:
        """New actions into deliveries, for the active subscriptions `serves` accepts (default: all)."""
        ...

    def claim(
        self, now: datetime, lease_until: datetime, limit: int, subscription_id: str | None = None
    ) -> list[ClaimedDelivery]: ...

    def renew(self, row_id: int, attempt: int, lease_until: datetime) -> bool: ...

    def mark_delivered(self, row_id: int, now: datetime, status: int, attempt: int | None = None) -> None: ...

    def mark_failed(
        self,
        row_id: int,
        status: int | None,
        error: str,
        next_attempt_at: datetime,
        dead: bool,
        attempt: int | None = None,
    ) -> None: ...

    def deliveries(
        self, subscription_id: str | None, status: str | None, after: int, limit: int
    ) -> list[DeliveryRecord]: ...

    def redrive(self, now: datetime, subscription_id: str | None, delivery_id: str | None) -> int: ...

    def discard(self, delivery_id: str) -> bool: ...

    def backlog(self) -> Mapping[str, Backlog]:
        """Subscription id -> its pending deliveries and dead letters (subscriptions with neither left out)."""
        ...
