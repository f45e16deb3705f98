"""Request and response models of the HTTP API (pydantic at the boundary only), with OpenAPI examples."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rulesvc.events import TICKET_EVENT_TYPES

# Identifiers end up in indexed columns: bounded, printable (PostgreSQL text refuses NUL).
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Identifier = Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]
EventType = Literal[
    "ticket.created",
    "ticket.updated",
    "ticket.accepted",
    "ticket.resolved",
    "ticket.paused",
    "ticket.resumed",
]
assert set(EventType.__args__) == set(TICKET_EVENT_TYPES)  # type: ignore[attr-defined]

LOAN_EVENT: dict[str, Any] = {
    "event_id": "evt-loan-20260930-0001",
    "type": "ticket.created",
    "occurred_at": "2026-09-30T10:00:00+08:00",
    "ticket": {
        "kind": "loan",
        "id": "LN-2026-0001",
        "region": "上海浦东",
        "amount": 6000000,
        "credit_rating": "AA",
        "owner": "王经理",
        "stage": "初审",
        "customer_name": "张三",
        "id_card": "110105199001011232",
        "mobile": "13812345678",
    },
}
COMPLAINT_EVENT: dict[str, Any] = {
    "event_id": "evt-cmp-20260930-0042",
    "type": "ticket.created",
    "occurred_at": "2026-09-30T14:00:00+08:00",
    "ticket": {"kind": "complaint", "id": "CP-2026-0042", "owner": "李娜", "channel": "电话银行"},
}
EXPENSE_EVENT: dict[str, Any] = {
    "event_id": "evt-exp-20260930-0107",
    "type": "ticket.created",
    "occurred_at": "2026-09-30T09:30:00+08:00",
    "ticket": {
        "kind": "expense",
        "id": "EX-2026-0107",
        "expense_type": "差旅费",
        "amount": 4999.99,
        "applicant_rank": "部门经理",
        "applicant": "赵敏",
    },
}
EXPENSE_ACTIONS: Any = [
    {"type": "auto_approve", "rule": "expense-approval/差旅费小额自动审批"},
    {"type": "trigger_payment", "amount": 4999.99, "rule": "expense-approval/差旅费小额自动审批"},
]


class TicketIn(BaseModel):
    """The ticket snapshot: `kind` and `id` are required; any other business field is carried along."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [LOAN_EVENT["ticket"]]})

    kind: Annotated[str, Field(min_length=1, max_length=64, pattern=_PRINTABLE, description="工单类型")]
    id: Identifier | int = Field(description="工单编号")


class EventIn(BaseModel):
    """A ticket event sent by a ticket tool (贷款申请、客户投诉、费用报销 ...)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [LOAN_EVENT, COMPLAINT_EVENT, EXPENSE_EVENT]}
    )

    event_id: Identifier = Field(description="事件编号，幂等键：重发同一事件返回原决策")
    type: EventType = Field(description="事件类型")
    occurred_at: AwareDatetime = Field(description="事件发生时间（带时区），SLA 从此刻起算")
    ticket: TicketIn


class SimulateIn(BaseModel):
    """Events to replay on a virtual clock, and the instant to run timers up to."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"events": [COMPLAINT_EVENT], "until": "2026-09-30T17:00:00+08:00"}]},
    )

    events: list[EventIn] = Field(max_length=1000)
    until: AwareDatetime
    as_of: AwareDatetime | None = Field(
        default=None,
        description="decide every event on the ruleset versions in force at this time "
        "(default: those in force at each event's own time)",
    )
    draft_id: Annotated[str, Field(min_length=1, max_length=64, pattern=_PRINTABLE)] | None = Field(
        default=None,
        description="a ruleset draft to decide with, in place of its ruleset: what would this draft decide",
    )


class ActionOut(BaseModel):
    """An action for the ticket tool: `type`, its fields (CONTRACT.md) and the emitting `rule`."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": EXPENSE_ACTIONS})

    type: str
    rule: str


class FiredOut(BaseModel):
    ruleset: str
    version: int
    rule: str


class EventDecisionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decision_id": "3f1c2a9e-6a51-4f0b-9d8e-2b7c5e8a1d04",
                    "event_id": EXPENSE_EVENT["event_id"],
                    "ticket_id": "EX-2026-0107",
                    "actions": EXPENSE_ACTIONS,
                    "fired": [{"ruleset": "expense-approval", "version": 1, "rule": "差旅费小额自动审批"}],
                }
            ]
        }
    )

    decision_id: str
    event_id: str
    ticket_id: str
    actions: list[ActionOut]
    fired: list[FiredOut]


class ChainOut(BaseModel):
    seq: int
    hash: str


class DecisionOut(BaseModel):
    """A stored decision. `event` is masked (`110105********1232`, `138****5678`, `张*`) unless `masked` is false."""

    decision_id: str
    event_id: str
    ticket_id: str
    decided_at: datetime
    event: dict[str, Any]
    actions: list[ActionOut]
    fired: list[FiredOut]
    versions: dict[str, int]
    trace: list[dict[str, Any]]
    masked: bool
    chain: ChainOut


class DecisionPageOut(BaseModel):
    """A page of decisions, newest first; ask for the next with `after=next_after` (null: no more)."""

    records: list[DecisionOut]
    next_after: str | None


class FeedRecordOut(BaseModel):
    cursor: int
    at: datetime
    ticket_id: str
    decision_id: str
    action: ActionOut


class FeedOut(BaseModel):
    """Actions in cursor order; poll again with `after=next_after`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "records": [
                        {
                            "cursor": 1,
                            "at": "2026-09-30T01:30:00.123456+00:00",
                            "ticket_id": "EX-2026-0107",
                            "decision_id": "3f1c2a9e-6a51-4f0b-9d8e-2b7c5e8a1d04",
                            "action": EXPENSE_ACTIONS[0],
                        }
                    ],
                    "next_after": 1,
                }
            ]
        }
    )

    records: list[FeedRecordOut]
    next_after: int


class BrokenOut(BaseModel):
    seq: int
    reason: str
    message: str
    subject: str


class VerifyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "checked": 1024},
                {
                    "ok": False,
                    "checked": 41,
                    "first_broken": {
                        "seq": 42,
                        "reason": "hash_mismatch",
                        "message": "第 42 条日志内容被修改（哈希不符）",
                        "subject": "3f1c2a9e-6a51-4f0b-9d8e-2b7c5e8a1d04",
                    },
                },
            ]
        }
    )

    ok: bool
    checked: int
    first_broken: BrokenOut | None = None
    problems: list[ProblemOut] = Field(
        default_factory=list,
        description="存储的行与日志链记录不符（动作流、webhook 投递、规则集版本、检查点）",
    )
    checkpoints: int | None = Field(default=None, description="用于核对日志链的已签名检查点数量")


class ProblemOut(BaseModel):
    table: str
    row: str
    reason: str
    message: str
    seq: int | None = None


class CheckpointOut(BaseModel):
    seq: int = Field(description="检查点所签的日志链条数")
    head_hash: str
    at: str
    key_id: str
    public_key: str = Field(description="签名公钥（Ed25519，十六进制）")
    signature: str = Field(description="Ed25519 签名（十六进制）")


class AdministrationEntryOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int = Field(description="日志链序号")
    at: str = Field(description="记录时间（ISO 8601）")
    kind: Literal["key", "user"] = Field(description="key：API 密钥；user：用户或服务账号")
    subject: str = Field(description="密钥 key_id 或用户 user_id")
    change: str = Field(description="created、updated、revoked、rotated、locked、password_changed 等")
    by: str = Field(description="操作人")


class AdministrationOut(BaseModel):
    entries: list[AdministrationEntryOut] = Field(description="最新的在前")


class TimelineEntryOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    at: datetime
    trigger: str = Field(description="触发者：事件的 event_id，或到期的计时器")
    actions: list[ActionOut]


class SimulateOut(BaseModel):
    timeline: list[TimelineEntryOut]


class ErrorOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "invalid_request",
                    "message": "请求内容不合法",
                    "details": [
                        {"path": "ticket.kind", "code": "validation.missing", "message": "缺少必填字段"}
                    ],
                }
            ]
        }
    )

    code: str
    message: str
    details: Any = None


class HealthOut(BaseModel):
    status: str


class CalendarCoverageOut(BaseModel):
    confirmed_through: str = Field(description="last day of the officially confirmed schedule (YYYY-MM-DD)")
    days_left: int = Field(description="days until then (Asia/Shanghai); negative once past")


class ReadyOut(BaseModel):
    status: str
    checks: dict[str, str]
    calendars: dict[str, CalendarCoverageOut] = Field(
        default_factory=dict,
        description="confirmed coverage per calendar that declares one; deadlines past it are provisional",
    )
