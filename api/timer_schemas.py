"""Request and response models of the webhook and SLA report routes (pydantic at the boundary only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rulesvc.delivery.ports import DeliveryRecord, SubscriptionRecord
from rulesvc.settings import CHANNEL_NAME

FieldClass = Literal["公开", "内部", "敏感", "个人信息"]


def _default_classes() -> list[FieldClass]:
    return ["公开", "内部"]


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
    classes: list[FieldClass] = Field(
        default_factory=_default_classes,
        max_length=4,
        description="field classes the bodies carry in clear; the rest leave masked (default 公开, 内部; "
        "个人信息 = personal data in clear, recorded in the audit chain)",
    )
    from_start: bool = Field(default=False, description="also deliver every action already in the feed")

    @field_validator("url", "secret", "description")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 for c in value):
            raise ValueError("不能含控制字符")
        return value

    @field_validator("kinds", "action_types")
    @classmethod
    def _names(cls, values: list[str]) -> list[str]:
        for value in values:
            if not 0 < len(value) <= 64 or any(ord(c) < 32 for c in value):
                raise ValueError("名称应为 1 到 64 个可打印字符")
        return values


MAX_ROW_ID = 2**63 - 1
_SUBSCRIPTION = r"(?:wh_[0-9a-f]{12}|ch_" + CHANNEL_NAME.strip("^$") + ")"
SUBSCRIPTION_ID_PATTERN = "^" + _SUBSCRIPTION + "$"
"""A webhook's id (`wh_` and 12 hex digits) or a notification channel's (`ch_<渠道名>`)."""
DELIVERY_ID_PATTERN = "^" + _SUBSCRIPTION + "-[0-9]{1,19}$"
"""`<订阅 id>-<游标>`."""


class DeadLettersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscription_id: str | None = Field(None, pattern=SUBSCRIPTION_ID_PATTERN, description="只看该订阅的死信")
    after: int = Field(0, ge=0, le=MAX_ROW_ID, description="上一页的 next_after")
    limit: int = Field(100, ge=1, le=1000)


class DeliveriesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["pending", "delivered", "dead", "discarded"] | None = None
    after: int = Field(0, ge=0, le=MAX_ROW_ID, description="上一页的 next_after")
    limit: int = Field(100, ge=1, le=1000)


class SlaQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: datetime = Field(alias="from", description="区间起点（含），带时区偏移")
    to: datetime = Field(description="区间终点（不含），带时区偏移")
    group_by: str | None = Field(None, max_length=200, description="如 ruleset,month")
    tz: str = Field("Asia/Shanghai", max_length=64, description="按日/周/月分组所用的时区")
    format: Literal["json", "csv", "xlsx"] = Field(
        "json", description="json；csv（UTF-8 带 BOM，Excel 可直接打开）；xlsx"
    )


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool


class SubscriptionOut(BaseModel):
    id: str
    url: str
    kinds: list[str]
    action_types: list[str]
    description: str
    classes: list[str]
    active: bool
    paused: bool = Field(
        description="管理员暂停（PATCH active=false）：恢复前一直暂停，worker 重启也不会按配置重新启用"
    )
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
            classes=list(record.classes),
            active=record.active,
            paused=record.paused,
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
    provisional: int = Field(
        description="figures whose deadline lay past the calendar's confirmed coverage (暂定截止时间)"
    )


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
