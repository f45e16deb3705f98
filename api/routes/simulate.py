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
    description="返回按时间排序的时间线；`trigger` 是事件的 event_id 或到期的计时器。无任何副作用。",
    responses=errors(401, 403, 413, 415, 422),
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
    timeline = await run_in_threadpool(rt.service.simulate, body["events"], parsed.until)
    return JSONBytes(timeline)
