"""Calendar lifecycle routes, mirroring `/v1/rulesets`: versions, drafts through the check and four-eyes
approval, effective-dated publishing (which re-plans the open timers on the calendar), diff and history.
A thin layer over the same `LifecycleService`, given the calendar artifact type."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.responses import JSONBytes
from api.routes.lifecycle_http import (
    CHANGE_STATUSES,
    READ,
    WRITE,
    LifecycleRoutes,
    errors_doc,
    lifecycle_of,
    mount_lifecycle_routes,
    yaml_body_doc,
    yaml_text,
)
from api.ruleset_schemas import AsOfQuery, DraftQuery
from rulesvc.apikeys import Principal
from rulesvc.lifecycle.ports import KIND_CALENDAR
from rulesvc.lifecycle.service import LifecycleService
from rulesvc.lifecycle.views import draft_json, overview_json
from rulesvc.sla.coverage import days_left, today_in

router = APIRouter(tags=["calendars"])

__all__ = ["router"]


def _service(request: Request) -> LifecycleService:
    return lifecycle_of(request).calendars


def _draft(draft: Any, **kwargs: Any) -> dict[str, Any]:
    return draft_json(draft, kind=KIND_CALENDAR, **kwargs)


@router.get(
    "/v1/calendars",
    summary="日历列表：每个日历当前（或 as_of 时刻）生效的版本及官方安排确认到哪天",
    responses=errors_doc(422),
)
async def list_calendars(
    request: Request, query: Annotated[AsOfQuery, Query()], _principal: Principal = Depends(READ)
) -> Response:
    queries = _service(request).queries
    instant = query.as_of or queries.clock.now()
    entries = await run_in_threadpool(queries.overview, instant)
    calendars = lifecycle_of(request).registry.timeline.at(instant).calendars
    result = []
    for entry in entries:
        item = overview_json(entry)
        calendar = calendars.get(entry["name"])
        if calendar is not None and calendar.confirmed_through is not None:
            item["confirmed_through"] = calendar.confirmed_through.isoformat()
            item["days_left"] = days_left(calendar, today_in(calendar.tz.key, instant))
        result.append(item)
    return JSONBytes({"as_of": instant.isoformat(), "calendars": result})


@router.post(
    "/v1/calendars/{name}/drafts",
    status_code=201,
    summary="上传日历草稿（日历 YAML 文件）",
    description=(
        "校验日历文件（错误带 file:line:col，与 `rulesvc check` 相同），并用草稿日历运行全部合规样例。"
        "`?reason=` 写明修改原因（例如：国务院 2027 年放假安排）。"
    ),
    responses=errors_doc(*CHANGE_STATUSES),
    openapi_extra=yaml_body_doc("日历文件"),
)
async def create_draft(
    name: str,
    request: Request,
    query: Annotated[DraftQuery, Query()],
    principal: Principal = Depends(WRITE),
) -> Response:
    content = await yaml_text(request)
    service = _service(request)
    actor = principal.actor
    draft = await run_in_threadpool(
        lambda: service.create_draft(actor, name, content, query.reason, base_version=query.base_version)
    )
    diff = await run_in_threadpool(service.queries.draft_diff, draft)
    return JSONBytes(_draft(draft, diff=diff), status_code=201)


mount_lifecycle_routes(
    router,
    LifecycleRoutes(
        base="/v1/calendars",
        kind=KIND_CALENDAR,
        service=_service,
        summaries={
            "list_drafts": "日历草稿列表",
            "get_draft": "日历草稿详情：逐日差异与测试结果（审批人据此审批）",
            "submit": "提交审批",
            "approve": "批准（四眼原则：草稿作者本人返回 403）",
            "reject": "驳回（须写明理由；作者本人不能驳回）",
            "publish": "发布已批准的日历草稿（可指定未来生效时间）；该日历上未结束的计时器按新版本重新计划",
            "versions": "日历版本列表",
            "version": "某个日历版本（content 为日历文件内容）",
            "diff": "两个日历版本（或草稿）之间的逐日差异（2027-02-07 (sun): 调休上班 added）与文本差异",
            "history": "审计历史：该日历每一步（谁、何时、为何、内容哈希）及其哈希链位置",
        },
        descriptions={
            "publish": "`effective_at` 默认当前，不能早于当前。",
            "diff": (
                "`from`/`to` 为版本号（`3` 或 `v3`）或草稿 id；默认 `to` 为最新版本，"
                "`from` 为其上一版本或草稿的基础版本。"
            ),
        },
    ),
)
