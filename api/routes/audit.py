"""GET /v1/audit/verify — recompute the decision log's hash chain."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import require, runtime
from api.responses import JSONBytes
from api.routes.common import errors
from api.schemas import VerifyOut
from rulesvc.apikeys import Permission, Principal

router = APIRouter(tags=["audit"])


@router.get(
    "/v1/audit/verify",
    response_model=VerifyOut,
    summary="校验决策日志哈希链",
    description='`{"ok": true, "checked": n}`，或 `ok: false` 并给出第一条被篡改、删除或错序的日志。',
    responses=errors(401, 403),
)
async def verify(
    request: Request, _principal: Principal = Depends(require(Permission.AUDIT_VERIFY))
) -> Response:
    result = await run_in_threadpool(runtime(request).service.verify_audit)
    return JSONBytes(result.to_json())
