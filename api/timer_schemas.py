"""Request and response models of the webhook and SLA report routes (pydantic at the boundary only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rulesvc.storage.webhook_records import DeliveryRecord, SubscriptionRecord


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://crm.example.cn/rulesvc/hook",
                    "kinds": ["complaint"],
                    "action_types": ["notify", "escalate"],
                    "description": "投诉系统：提醒与升级",
                }
            ]
        },
    )

    url: str = Field(min_length=8, max_length=2000, description="http(s) URL that receives the POSTs")
    secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="HMAC key; generated when omitted"
    )
    kinds: list[str] = Field(default_factory=list, max_length=50, description="ticket kinds; empty = all")
    action_types: list[str] = Field(
        default_factory=list, max_length=50, description="action types; empty = all"
    )
    description: str = Field(default="", max_length=400)
    from_start: bool = Field(default=False, description="also deliver every action already in the feed")


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool


class SubscriptionOut(BaseModel):
    id: str
    url: str
    kinds: list[str]
    action_types: list[str]
    description: str
    active: bool
    created_at: datetime
    secret: str | None = Field(default=None, description="only in the answer to the creation")

    @classmethod
    def of(cls, record: SubscriptionRecord, with_secret: bool = False) -> SubscriptionOut:
        return cls(
            id=record.id,
            url=record.url,
            kinds=list(record.kinds),
            action_types=list(record.action_types),
            description=record.description,
            active=record.active,
            created_at=record.created_at,
            secret=record.secret if with_secret else None,
        )


class SubscriptionsOut(BaseModel):
    subscriptions: list[SubscriptionOut]


class DeliveryOut(BaseModel):
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

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryOut:
        return cls(
            delivery_id=record.delivery_id,
            subscription_id=record.subscription_id,
            cursor=record.cursor,
            ticket_id=record.ticket_id,
            action_type=record.action_type,
            status=record.status,
            attempts=record.attempts,
            next_attempt_at=record.next_attempt_at,
            created_at=record.created_at,
            delivered_at=record.delivered_at,
            last_status=record.last_status,
            last_error=record.last_error,
        )


class DeliveriesOut(BaseModel):
    """Page with `after=next_after`."""

    deliveries: list[DeliveryOut]
    next_after: int


class RedriveOut(BaseModel):
    redriven: int


class SlaFiguresOut(BaseModel):
    total: int
    met: int
    breached: int
    attainment: float | None = Field(description="met / total; null when there is nothing to count")
    open_breaches: int = Field(description="breached timers not stopped yet")
    avg_breach_seconds: float | None
    max_breach_seconds: float | None
    avg_remaining_seconds: float | None


class SlaGroupOut(SlaFiguresOut):
    key: dict[str, str]


class SlaReportOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    from_: datetime = Field(alias="from")
    to: datetime
    group_by: list[str]
    timezone: str
    total: SlaFiguresOut
    groups: list[SlaGroupOut]


TIMER_BODY_MODELS: list[type[BaseModel]] = [SubscriptionIn, SubscriptionPatch]
"""Bodies the webhook routes parse themselves (added to the OpenAPI components)."""


def page(records: list[Any], after: int) -> int:
    return int(records[-1].row_id) if records else after
