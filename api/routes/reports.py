"""GET /v1/reports/sla — SLA attainment per ruleset, group, timer, period (roles compliance, auditor, admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import require
from api.report_files import FILE_RESPONSES, report_response
from api.responses import JSONBytes
from api.routes.common import errors
from api.timer_schemas import SlaQuery, SlaReportOut
from api.timers import timers_runtime
from rulesvc.apikeys import Permission, Principal
from rulesvc.sla.reports import GROUP_KEYS, InvalidReportError, parse_group_by, sla_report

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


class RuleHitsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: AwareDatetime = Field(alias="from", description="区间起点（含），带时区偏移")
    to: AwareDatetime = Field(description="区间终点（不含），带时区偏移")
    ruleset: str | None = Field(None, min_length=1, max_length=200, description="只看这个规则集")
    format: Literal["json", "csv", "xlsx"] = Field("json", description="json、csv（UTF-8 带 BOM）或 xlsx")


@router.get(
    "/v1/reports/rules",
    summary="规则与表行命中次数",
    description=(
        "区间 [from, to) 内（按决策时间）每条规则、每个决策表行被命中的决策数，包括从未命中的（0）；"
        "`never_fired` 列出它们。`format=csv|xlsx` 以文件下载。"
    ),
    responses={**errors(401, 403, 422), **FILE_RESPONSES},
)
async def rule_hits(
    request: Request,
    query: Annotated[RuleHitsQuery, Query()],
    _principal: Principal = Depends(require(Permission.REPORTS_READ)),
) -> Response:
    if query.to <= query.from_:
        raise InvalidReportError("to 必须晚于 from", "to")
    service = request.app.state.runtime.service
    report = await run_in_threadpool(service.rule_hits, query.from_, query.to, query.ruleset)
    return report_response(report, query.format, "rule-hits", "规则命中") or JSONBytes(report)
