"""GET /v1/reports/sla — SLA attainment per ruleset, group, timer, period (roles compliance, auditor, admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import require
from api.report_files import FILE_RESPONSES, report_response
from api.responses import JSONBytes
from api.routes.common import errors
from api.timer_schemas import SlaQuery, SlaReportOut
from api.timers import timers_runtime
from rulesvc.apikeys import Permission, Principal
from rulesvc.sla.reports import GROUP_KEYS, parse_group_by, sla_report

router = APIRouter(tags=["reports"])


@router.get(
    "/v1/reports/sla",
    response_model=SlaReportOut,
    summary="SLA 达成率报表",
    description=(
        "统计区间 [from, to) 内得出结果的计时：按时停止为达成（met），到期未停止为超时（breached，"
        "其后停止时记录超出的工作时长）。`group_by` 取 "
        + "、".join(GROUP_KEYS)
        + "（逗号分隔，至多一个周期）。`format=csv|xlsx` 以文件下载（每组一行，末行合计）。"
    ),
    responses={**errors(401, 403, 422), **FILE_RESPONSES},
)
async def sla(
    request: Request,
    query: Annotated[SlaQuery, Query()],
    _principal: Principal = Depends(require(Permission.REPORTS_READ)),
) -> Response:
    keys = parse_group_by(query.group_by)
    source = timers_runtime(request).reports
    service = request.app.state.runtime.service
    report = await run_in_threadpool(
        sla_report,
        source,
        query.from_,
        query.to,
        keys,
        query.tz,
        getattr(service.book, "calendars", {}),
        service.clock.now(),
    )
    return report_response(report, query.format, "sla", "SLA达成率") or JSONBytes(report)
