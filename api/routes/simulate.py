"""POST /v1/simulate — events and due timers on a virtual clock; nothing stored, sent or scheduled."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import json_body, require, runtime
from api.errors import ApiError
from api.responses import JSONBytes
from api.routes.common import errors, json_request_body
from api.schemas import COMPLAINT_EVENT, SimulateIn, SimulateOut
from rulesvc.apikeys import Permission, Principal

router = APIRouter(tags=["simulate"])


@router.post(
    "/v1/simulate",
    response_model=SimulateOut,
    summary="模拟：按虚拟时钟运行事件与到期计时器",
    description=(
        "返回按时间排序的时间线；`trigger` 是事件的 event_id 或到期的计时器。无任何副作用。"
        "规则集版本：默认按每个事件发生时生效的版本；`as_of` 指定某一时刻生效的版本；"
        "`draft_id` 用草稿替换其规则集（“这个草稿会怎么判”）。"
    ),
    responses=errors(401, 403, 404, 413, 415, 422),
    openapi_extra=json_request_body(
        "SimulateIn",
        {"投诉 3 小时未受理": {"events": [COMPLAINT_EVENT], "until": "2026-09-30T17:00:00+08:00"}},
    ),
)
async def post_simulate(
    request: Request,
    _principal: Principal = Depends(require(Permission.SIMULATE)),
    body: Any = Depends(json_body),
) -> Response:
    parsed = SimulateIn.model_validate(body)
    rt = runtime(request)
    limit = rt.settings.max_simulate_events
    if len(parsed.events) > limit:
        raise ApiError(422, "invalid_request", f"一次最多模拟 {limit} 个事件", {"max_events": limit})
    lifecycle = getattr(request.app.state, "lifecycle", None)
    book = None
    if lifecycle is not None:
        book = await run_in_threadpool(
            lifecycle.service.queries.simulation_book, parsed.as_of, parsed.draft_id
        )
    elif parsed.as_of is not None or parsed.draft_id is not None:
        raise ApiError(422, "invalid_request", "此服务未启用规则集版本管理：不支持 as_of 与 draft_id")
    timeline = await run_in_threadpool(rt.service.simulate, body["events"], parsed.until, book)
    return JSONBytes(timeline)
