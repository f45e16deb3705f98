"""POST /v1/events — decide one ticket event (idempotent on event_id)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import json_body, require, runtime
from api.responses import JSONBytes
from api.routes.common import errors, json_request_body
from api.schemas import COMPLAINT_EVENT, EXPENSE_EVENT, LOAN_EVENT, EventDecisionOut, EventIn
from rulesvc.apikeys import Permission, Principal

router = APIRouter(tags=["events"])


@router.post(
    "/v1/events",
    response_model=EventDecisionOut,
    summary="提交工单事件，返回决策",
    description=(
        "规则引擎对事件求值，返回需执行的动作与命中的规则（含规则集版本）。"
        "同一 `event_id` 重发相同内容返回原决策（同一 `decision_id`，不产生新动作）；内容不同返回 409。"
    ),
    responses=errors(401, 403, 409, 413, 415, 422),
    openapi_extra=json_request_body(
        "EventIn",
        {
            "贷款申请（上海浦东，600万，AA）": LOAN_EVENT,
            "客户投诉": COMPLAINT_EVENT,
            "差旅费报销": EXPENSE_EVENT,
        },
    ),
)
async def post_event(
    request: Request,
    _principal: Principal = Depends(require(Permission.EVENTS_WRITE)),
    body: Any = Depends(json_body),
) -> Response:
    EventIn.model_validate(body)
    rt = runtime(request)
    outcome = await run_in_threadpool(rt.service.handle_event, body)
    rt.metrics.observe_decision(outcome.created, outcome.fired, outcome.actions)
    return JSONBytes(outcome.to_json())
