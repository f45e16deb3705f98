"""GET /v1/reports/sla — SLA attainment per ruleset, group, timer, period (roles compliance, auditor, admin)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from rulesvc.decisions.ticket_reports import TicketReport
from rulesvc.sla.reports import GROUP_KEYS, MAX_RANGE, InvalidReportError, parse_group_by, sla_report

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


def check_window(start: datetime, end: datetime, longest: bool = True) -> None:
    """[start, end) is not empty and (`longest`) not longer than `MAX_RANGE`."""
    if end <= start:
        raise InvalidReportError("to 必须晚于 from", "to")
    if longest and end - start > MAX_RANGE:
        raise InvalidReportError("报表区间最长 10 年", "to")


def _only(description: str) -> Any:
    """An optional filter by a name (a ruleset, a group, a kind...)."""
    return Field(None, min_length=1, max_length=200, description=description)


class ReportQuery(BaseModel):
    """What every report route takes: the answer's format."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    format: Literal["json", "csv", "xlsx"] = Field("json", description="json、csv（UTF-8 带 BOM）或 xlsx")


class WindowQuery(ReportQuery):
    """A report over [from, to)."""

    from_: AwareDatetime = Field(alias="from", description="区间起点（含），带时区偏移")
    to: AwareDatetime = Field(description="区间终点（不含），带时区偏移")


class RuleHitsQuery(WindowQuery):
    ruleset: str | None = _only("只看这个规则集")


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
    check_window(query.from_, query.to, longest=False)  # counts of an index: any period
    return await answer(
        request, query, "rule-hits", "规则命中", lambda s: s.rule_hits(query.from_, query.to, query.ruleset)
    )


class TimersDueQuery(ReportQuery):
    within_hours: float = Field(24, gt=0, le=24 * 31, description="从现在起多少小时内到期")
    ruleset: str | None = _only("只看这个规则集启动的计时")
    group: str | None = _only("只看分派给这个组的工单")


@router.get(
    "/v1/reports/timers",
    summary="即将到期与逾期未触发的计时点",
    description=(
        "按规则集、分派组、计时器与触发点：从现在起 `within_hours` 小时内到期的计时点数（due_soon，其中超出日历"
        "确认范围的 provisional）、时间已过 60 秒仍未触发的点数（overdue）、最近一个的时间；`total` 为合计。"
        "`format=csv|xlsx` 以文件下载。"
    ),
    responses={**errors(401, 403, 422), **FILE_RESPONSES},
)
async def timers_due(
    request: Request,
    query: Annotated[TimersDueQuery, Query()],
    _principal: Principal = Depends(require(Permission.REPORTS_READ)),
) -> Response:
    within = timedelta(hours=query.within_hours)
    return await answer(
        request,
        query,
        "timers-due",
        "即将到期计时",
        lambda s: s.timers_due_report(within, query.ruleset, query.group),
    )


class LateFiresQuery(RuleHitsQuery):
    group: str | None = _only("只看分派给这个组的工单")


@router.get(
    "/v1/reports/late-fires",
    summary="计时点触发与迟到触发",
    description=(
        "区间 [from, to) 内（按决策时间）触发的计时点，按规则集、分派组、计时器与触发点：触发次数、其中迟到"
        "（late_by ≥ 60 秒）的次数、迟到的平均秒数与最长秒数；`total` 为合计。`format=csv|xlsx` 以文件下载。"
    ),
    responses={**errors(401, 403, 422), **FILE_RESPONSES},
)
async def late_fires(
    request: Request,
    query: Annotated[LateFiresQuery, Query()],
    _principal: Principal = Depends(require(Permission.REPORTS_READ)),
) -> Response:
    check_window(query.from_, query.to)
    return await answer(
        request,
        query,
        "late-fires",
        "迟到触发",
        lambda s: s.late_fires_report(query.from_, query.to, query.ruleset, query.group),
    )


class TicketReportQuery(WindowQuery):
    tz: str = Field("Asia/Shanghai", max_length=64, description="按日/周/月分组所用的时区")
    period: Literal["day", "week", "month"] = Field("day", description="周期（approvals、tickets）")
    kind: str | None = Field(None, min_length=1, max_length=100, description="只看这种工单")
    field: str | None = _only("tickets：按哪个工单字段分布")
    group: str | None = _only("workload：只看这个组")


TICKET_REPORTS = {
    "approvals": "自动审批率",
    "tickets": "工单分布",
    "workload": "工作量",
    "stages": "阶段耗时",
}


@router.get(
    "/v1/reports/{report}",
    summary="工单报表：自动审批率与金额、按字段分布、组与处理人工作量、各阶段耗时",
    description=(
        "基于区间 [from, to) 内决策的工单事件（每个决策写入时记下的事实，按事件时间分周期）。每个工单在每个周期"
        "（workload、stages 的未结停留：在整个区间）只计一次，取它在其中最后一次决策时的状态。`approvals`：按工单"
        "类型与周期的工单数、其中在该周期被自动审批的工单数、自动审批率与金额（最后已知金额）；`tickets`：按周期"
        "与字段 `field` 取值的工单数；`workload`：按分派组（最后一次 assign）与处理人（owner）的工单数与平均"
        "处理时长（自工单第一个事件起）；`stages`：在区间内离开的各阶段（stage）停留的次数、平均值与 P90（秒，"
        "完整停留时长，含区间开始前的部分），以及区间结束时仍停留其中的工单数（open）。`format=csv|xlsx` 以文件下载。"
    ),
    responses={**errors(401, 403, 422), **FILE_RESPONSES},
)
async def ticket_report(
    request: Request,
    report: Literal["approvals", "tickets", "workload", "stages"],
    query: Annotated[TicketReportQuery, Query()],
    _principal: Principal = Depends(require(Permission.REPORTS_READ)),
) -> Response:
    check_window(query.from_, query.to)
    try:
        ZoneInfo(query.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidReportError(f"tz: 未知时区 {query.tz!r}", "tz") from None
    if report == "tickets" and not query.field:
        raise InvalidReportError("tickets 报表须给出 field（工单字段）", "field")
    asked = TicketReport(
        report,
        query.from_,
        query.to,
        query.tz,
        query.period,
        query.kind,
        query.field or "",
        query.group,
    )
    return await answer(
        request, query, report, TICKET_REPORTS[report], lambda s: s.ticket_reports([asked])[0]
    )


async def answer(
    request: Request, query: ReportQuery, name: str, title: str, build: Callable[[Any], dict[str, Any]]
) -> Response:
    """The report `build` makes of the decision service (in a worker thread), as `query.format` asks."""
    report = await run_in_threadpool(build, request.app.state.runtime.service)
    return report_response(report, query.format, name, title) or JSONBytes(report)
