"""GET /v1/reports/sla — SLA attainment per ruleset, group, timer, period (roles compliance, auditor, admin)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import require
from api.responses import JSONBytes
from api.routes.common import errors
from api.timer_schemas import SlaReportOut
from api.timers import timers_runtime
from rulesvc.apikeys import Permission, Principal
from rulesvc.reports import DEFAULT_TZ, GROUP_KEYS, parse_group_by, sla_report

router = APIRouter(tags=["reports"])


@router.get(
    "/v1/reports/sla",
    response_model=SlaReportOut,
    summary="SLA 达成率报表",
    description=(
        "统计区间 [from, to) 内得出结果的计时：按时停止为达成（met），到期未停止为超时（breached，"
        "其后停止时记录超出的工作时长）。`group_by` 取 "
        + "、".join(GROUP_KEYS)
        + "（逗号分隔，至多一个周期）。"
    ),
    responses=errors(401, 403, 422),
)
async def sla(
    request: Request,
    from_: datetime = Query(..., alias="from", description="区间起点（含），带时区偏移"),
    to: datetime = Query(..., description="区间终点（不含），带时区偏移"),
    group_by: str | None = Query(None, max_length=200, description="如 ruleset,month"),
    tz: str = Query(DEFAULT_TZ, max_length=64, description="按日/周/月分组所用的时区"),
    _principal: Principal = Depends(require(Permission.REPORTS_READ)),
) -> Response:
    keys = parse_group_by(group_by)
    source = timers_runtime(request).reports
    report = await run_in_threadpool(sla_report, source, from_, to, keys, tz)
    return JSONBytes(report)
