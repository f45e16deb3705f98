"""GET /v1/decisions/{decision_id} — a stored decision (personal data masked without clearance)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import require, runtime
from api.responses import JSONBytes
from api.routes.common import errors
from api.schemas import DecisionOut
from rulesvc.apikeys import Permission, Principal
from rulesvc.decisions.service import DecisionNotFoundError

router = APIRouter(tags=["decisions"])


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
    try:
        canonical_id = str(uuid.UUID(decision_id))
    except ValueError:
        raise DecisionNotFoundError(decision_id) from None
    record = await run_in_threadpool(runtime(request).service.get_decision, canonical_id, principal)
    return JSONBytes(record)
