"""GET /v1/actions — the ordered feed of emitted actions, polled by ticket tools with a cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import require, runtime
from api.responses import JSONBytes
from api.routes.common import errors
from api.schemas import FeedOut
from api.timers import LONG_POLL_MAX_SECONDS, wait_for_actions
from rulesvc.apikeys import Permission, Principal

router = APIRouter(tags=["actions"])

MAX_CURSOR = 2**63 - 1


class FeedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: int = Field(0, ge=0, le=MAX_CURSOR, description="上次读到的游标（首次为 0）")
    limit: int = Field(100, ge=1, le=1000, description="最多返回条数")
    wait: float = Field(
        0, ge=0, le=LONG_POLL_MAX_SECONDS, description="没有新动作时最多等待的秒数（长轮询），0 为立即返回"
    )


@router.get(
    "/v1/actions",
    response_model=FeedOut,
    summary="动作流（按游标轮询）",
    description=(
        "返回游标大于 `after` 的动作，按游标升序；下次以 `next_after` 作为 `after` 继续。"
        "带 `wait` 时若暂无新动作则保持请求，直到有新动作或等满 `wait` 秒（长轮询）。"
    ),
    responses=errors(401, 403, 422),
)
async def list_actions(
    request: Request,
    query: Annotated[FeedQuery, Query()],
    _principal: Principal = Depends(require(Permission.ACTIONS_READ)),
) -> Response:
    service = runtime(request).service
    items = await run_in_threadpool(service.list_actions, query.after, query.limit)
    if not items and query.wait > 0:
        items = await wait_for_actions(request, service.list_actions, query.after, query.limit, query.wait)
    next_after = items[-1].cursor if items else query.after
    return JSONBytes({"records": [item.to_json() for item in items], "next_after": next_after})
