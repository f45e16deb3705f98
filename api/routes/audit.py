"""Audit routes: verify the chain and every table it vouches for; make and read signed checkpoints."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import require, runtime
from api.errors import ApiError
from api.responses import JSONBytes
from api.routes.common import errors
from api.schemas import AdministrationOut, CheckpointOut, VerifyOut
from rulesvc.apikeys import Permission, Principal
from rulesvc.opsstate import VERIFY, VERIFY_PROBLEMS

log = logging.getLogger("rulesvc.api")

router = APIRouter(tags=["audit"])


class AdministrationQuery(BaseModel):
    """Unknown query parameters are refused (422), as on every listing route."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(200, ge=1, le=1000, description="至多返回多少条")


@router.get(
    "/v1/audit/verify",
    response_model=VerifyOut,
    summary="校验决策日志哈希链及其担保的各表",
    description=(
        '`{"ok": true, "checked": n}`，或 `ok: false` 并给出第一条被篡改、删除或错序的日志；'
        "`problems` 列出与日志链不符的动作流、webhook 投递、规则集版本，以及不再被日志链延续的已签名检查点。"
    ),
    responses=errors(401, 403),
)
async def verify(
    request: Request, _principal: Principal = Depends(require(Permission.AUDIT_VERIFY))
) -> Response:
    rt = runtime(request)
    result = await run_in_threadpool(rt.service.verify_audit)
    if rt.ops is not None:  # for every replica's /metrics (rulesvc_chain_verify_*) and the 审计 page
        payload = result.to_json()
        if "problems" in payload:
            payload["problems"] = payload["problems"][:VERIFY_PROBLEMS]
            payload["problems_total"] = len(result.problems)
        try:
            await run_in_threadpool(rt.ops.put, VERIFY, datetime.now(UTC), payload)
        except Exception:  # the result stands whether or not it could be recorded
            log.exception("could not record the verify result")
    return JSONBytes(result.to_json())


@router.post(
    "/v1/audit/checkpoints",
    response_model=CheckpointOut,
    summary="立即生成已签名检查点",
    description="校验上一个检查点之后的日志链，然后用 Ed25519 对（条数、链头哈希、时间）签名，写入数据库之外的检查点目录。",
    responses=errors(401, 403, 409, 503),
)
async def make_checkpoint(
    request: Request, _principal: Principal = Depends(require(Permission.AUDIT_CHECKPOINT))
) -> Response:
    checkpoint = await run_in_threadpool(runtime(request).service.make_checkpoint)
    collector = runtime(request).metrics.ops
    if collector is not None:
        collector.forget_checkpoint()
    return JSONBytes(checkpoint.to_json())


@router.get(
    "/v1/audit/checkpoints/latest",
    response_model=CheckpointOut,
    summary="最新的已签名检查点",
    responses=errors(401, 403, 404, 503),
)
async def latest_checkpoint(
    request: Request, _principal: Principal = Depends(require(Permission.AUDIT_VERIFY))
) -> Response:
    checkpoint = await run_in_threadpool(runtime(request).service.latest_checkpoint)
    if checkpoint is None:
        raise ApiError(404, "not_found", "还没有检查点")
    return JSONBytes(checkpoint.to_json())


@router.get(
    "/v1/audit/administration",
    response_model=AdministrationOut,
    summary="密钥与用户管理记录（谁创建、停用、吊销了什么）",
    description=(
        "日志链中 API 密钥与用户的每一次变更，最新的在前：`change`（created、updated、revoked、rotated、"
        "locked 等）、`by`（操作人）以及变更后的名称、角色与状态；不含任何密钥、口令或其摘要。"
    ),
    responses=errors(401, 403, 422),
)
async def administration(
    request: Request,
    query: Annotated[AdministrationQuery, Query()],
    _principal: Principal = Depends(require(Permission.AUDIT_VERIFY)),
) -> Response:
    entries = await run_in_threadpool(runtime(request).service.administration, query.limit)
    return JSONBytes({"entries": entries})
