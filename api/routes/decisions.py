"""GET /v1/decisions — search stored decisions; GET /v1/decisions/{decision_id} — one of them (personal data
masked without clearance, in both)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import require, runtime
from api.responses import JSONBytes
from api.routes.common import errors
from api.schemas import DecisionOut, DecisionPageOut
from rulesvc.apikeys import Permission, Principal
from rulesvc.decisions.search import DEFAULT_LIMIT, MAX_LIMIT, MAX_TERM, Cursor, DecisionQuery
from rulesvc.decisions.service import DecisionNotFoundError

router = APIRouter(tags=["decisions"])


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    ticket_id: str | None = Field(None, min_length=1, max_length=200, description="工单编号")
    event_id: str | None = Field(None, min_length=1, max_length=200, description="事件编号")
    from_: AwareDatetime | None = Field(None, alias="from", description="决策时间起点（含），带时区偏移")
    to: AwareDatetime | None = Field(None, description="决策时间终点（不含），带时区偏移")
    rule: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TERM - 2,
        description="命中的规则集、规则、决策表或表行：`规则集`、`规则集/规则`、`规则集/表`、`规则集/表#行`",
    )
    action_type: str | None = Field(None, min_length=1, max_length=MAX_TERM - 2, description="动作类型")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="每页最多条数")
    after: str | None = Field(None, max_length=200, description="上一页返回的 next_after（不透明游标）")


@router.get(
    "/v1/decisions",
    response_model=DecisionPageOut,
    summary="检索决策记录",
    description=(
        "按工单、事件、决策时间区间 [from, to)、命中规则和动作类型检索（条件同时成立），按决策时间从新到旧分页；"
        "以 `next_after` 作为 `after` 取下一页，为 null 时已无更多。每条记录与单条查询相同，"
        "对无明文权限的角色脱敏；compliance 查看明文，每条明文查看都记入审计日志链。"
    ),
    responses=errors(401, 403, 422),
)
async def search_decisions(
    request: Request,
    query: Annotated[SearchQuery, Query()],
    principal: Principal = Depends(require(Permission.DECISIONS_READ)),
) -> Response:
    search = DecisionQuery(
        ticket_id=query.ticket_id,
        event_id=query.event_id,
        from_=query.from_,
        to=query.to,
        rule=query.rule,
        action_type=query.action_type,
        limit=query.limit,
        after=Cursor.decode(query.after) if query.after else None,
    )
    page = await run_in_threadpool(runtime(request).service.search_decisions, search, principal)
    return JSONBytes(page)


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=DecisionOut,
    summary="查询决策记录",
    description=(
        "输入事件、动作、命中规则及规则集版本、时间和日志链哈希。个人信息（身份证号、手机号、姓名）对"
        " auditor/admin 脱敏；compliance 可查看明文，且该次查看本身记入审计日志链。"
    ),
    responses=errors(401, 403, 404),
)
async def get_decision(
    request: Request,
    decision_id: str = Path(description="决策编号（UUID）", max_length=64),
    principal: Principal = Depends(require(Permission.DECISIONS_READ)),
) -> Response:
    record = await run_in_threadpool(runtime(request).service.get_decision, canonical(decision_id), principal)
    return JSONBytes(record)


@router.get(
    "/v1/decisions/{decision_id}/timers",
    summary="决策所属工单的 SLA 计时时间线",
    description=(
        "该决策所属工单的每个计时器：启动、各预警点与截止时间（计划时间；超出日历确认范围的标 provisional）、"
        "哪些点已触发及迟到多少秒（late_by ≥ 60 秒为迟到）、暂停、恢复、改期与停止。取自该工单最近 1000 条"
        "决策记录；只含计时器名称、触发点与时间，不含个人信息。"
    ),
    responses=errors(401, 403, 404),
)
async def decision_timers(
    request: Request,
    decision_id: str = Path(description="决策编号（UUID）", max_length=64),
    _principal: Principal = Depends(require(Permission.DECISIONS_READ)),
) -> Response:
    timeline = await run_in_threadpool(runtime(request).service.decision_timers, canonical(decision_id))
    return JSONBytes(timeline)


def canonical(decision_id: str) -> str:
    """The decision id as stored (a UUID's canonical text); not a UUID: not found."""
    try:
        return str(uuid.UUID(decision_id))
    except ValueError:
        raise DecisionNotFoundError(decision_id) from None
